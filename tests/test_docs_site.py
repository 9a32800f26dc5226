"""The documentation site builds with ``mkdocs build --strict`` (mkdocs.yml): every page is in
the nav, no link or anchor is broken, the API reference is generated from the docstrings, and
the built pages load nothing from another host (the site works offline)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import REPO_ROOT
from support.docs_site import build_site, require_mkdocs

pytestmark = pytest.mark.timeout(300)

DOCS = REPO_ROOT / "docs"
#: The sections of the single-page guide before it was split; old links to guide.md#<slug> land
#: on guide.md's pointer to the new page.
OLD_GUIDE_SECTIONS = [
    "a-first-app",
    "decorators",
    "path-rules",
    "how-handlers-are-called",
    "return-values",
    "errors",
    "hooks-and-middleware",
    "cors",
    "files",
    "limits",
    "running-the-server",
    "the-command-line",
    "logging",
    "observability",
    "ratapp-options",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_mkdocs()
    site_dir = tmp_path_factory.mktemp("docs-site") / "site"
    result = build_site(site_dir)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "WARNING" not in output, output[-4000:]
    yield site_dir


def _html(site: Path, page: str) -> str:
    return (site / page).read_text(encoding="utf-8")


def _page_of(markdown: Path) -> str:
    relative = markdown.relative_to(DOCS).with_suffix("")
    if relative.name in ("index", "README"):
        return str(relative.parent / "index.html").removeprefix("./")
    return f"{relative}/index.html"


def test_every_markdown_page_is_built(site: Path) -> None:
    pages = sorted(DOCS.rglob("*.md"))
    assert len(pages) >= 30
    for markdown in pages:
        assert (site / _page_of(markdown)).is_file(), markdown


def test_guide_keeps_every_old_section_as_a_pointer(site: Path) -> None:
    html = _html(site, "guide/index.html")
    for slug in OLD_GUIDE_SECTIONS:
        assert f'id="{slug}"' in html, slug
    assert len((DOCS / "guide.md").read_text(encoding="utf-8").splitlines()) < 80


def test_api_reference_is_generated_from_docstrings(site: Path) -> None:
    app = _html(site, "reference/app/index.html")
    # RatApp's methods with their docstrings, and the Args section rendered as a table.
    for name in ("enable_cors", "add_middleware", "before_request", "run"):
        assert f'id="rat_engine.RatApp.{name}"' in app, name
    assert "Register the decorated function for" in app
    assert "stream_body" in app
    # Dataclass fields documented with Sphinx's #: comments are listed with their meaning.
    settings = _html(site, "reference/settings/index.html")
    assert 'id="rat_engine.Limits.max_body_size"' in settings
    assert "Request bodies above this many bytes get 413" in settings
    for page in sorted((site / "reference").rglob("index.html")):
        text = page.read_text(encoding="utf-8")
        assert ":class:`" not in text and ":meth:`" not in text, page  # Sphinx roles became code


def test_examples_page_shows_every_example(site: Path) -> None:
    html = _html(site, "examples/index.html")
    for example in sorted((REPO_ROOT / "examples").glob("*.py")):
        assert example.name in html, example.name
    # ../examples/NAME.py links in the Markdown point into that page in the site.
    streaming = _html(site, "streaming/index.html")
    assert "../examples/#example-07-upload-channels" in streaming


ASSET = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(https?:)?//[^\"]*\"", re.I)


def test_pages_load_nothing_from_another_host(site: Path) -> None:
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        assert not ASSET.search(text), (page, ASSET.search(text))
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page
    for css in sorted(site.rglob("*.css")):
        assert not re.search(r"@import\s+url\(\s*[\"']?https?:", css.read_text(encoding="utf-8")), css


def test_strict_build_refuses_a_broken_link_or_anchor(tmp_path: Path) -> None:
    """The same configuration on a copy of docs/ with one broken anchor and one missing page."""
    require_mkdocs()
    for name in ("docs", "docs_build", "examples"):
        shutil.copytree(REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(
        REPO_ROOT / "rat_engine", tmp_path / "rat_engine", ignore=shutil.ignore_patterns("__pycache__")
    )
    changelog = tmp_path / "docs" / "changelog.md"
    changelog.write_text(
        changelog.read_text(encoding="utf-8") + "\n[a](routing.md#no-such-section) [b](no-such-page.md)\n",
        encoding="utf-8",
    )
    result = build_site(tmp_path / "site", root=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "does not contain an anchor '#no-such-section'" in output, output[-4000:]
    assert "'no-such-page.md', but the target is not found" in output, output[-4000:]
    assert output.count("WARNING") == 2, output[-4000:]  # those two, and nothing else in the copy
