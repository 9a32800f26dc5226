"""rat_engine.templates, used the way RAT Engine users call it (Jinja2 underneath)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jinja2")

from rat_engine import RatApp  # noqa: E402
from rat_engine.templates import (  # noqa: E402
    Template,
    TemplateEngine,
    TemplateError,
    TemplateNotFound,
    TemplatePathError,
    TemplateRuntimeError,
    TemplateSyntaxError,
    render_template,
    render_template_safe,
)
from rat_engine.testing import TestClient  # noqa: E402

pytestmark = pytest.mark.timeout(30)

USERS = [
    {"id": 1, "name": "Ada", "is_vip": True},
    {"id": 2, "name": "Linus", "is_vip": False},
]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """tmp/templates/... next to tmp/secret.txt, which no template name may reach."""
    (tmp_path / "secret.txt").write_text("TOP-SECRET", encoding="utf-8")
    templates = tmp_path / "templates"
    (templates / "partials").mkdir(parents=True)
    (templates / "index.html").write_text(
        "<h1>{{ title }}</h1>\n<ul>{% for u in users %}{% include 'partials/user.html' %}{% endfor %}</ul>\n",
        encoding="utf-8",
    )
    (templates / "partials" / "user.html").write_text("<li>{{ u.name }}</li>", encoding="utf-8")
    (templates / "note.txt").write_text("note: {{ text }}", encoding="utf-8")
    (templates / "sneaky.html").write_text("{% include '../secret.txt' %}", encoding="utf-8")
    return templates


# ---- the syntax: {{ var }}, {% if %}, {% for %} -------------------------------------------


def test_from_string_substitutes_variables() -> None:
    template_engine = TemplateEngine(auto_escape=True, cache=True)
    template = template_engine.from_string("Hello {{ user.name }}, id {{user.id}}!")
    assert isinstance(template, Template)
    assert template.render({"user": USERS[0]}) == "Hello Ada, id 1!"


def test_if_else_picks_the_branch() -> None:
    template_engine = TemplateEngine(auto_escape=True, cache=True)
    source = "{% if user.is_vip %}VIP {{ user.name }}{% elif user.id > 5 %}old{% else %}regular{% endif %}"
    assert template_engine.render_string(source, {"user": USERS[0]}) == "VIP Ada"
    assert template_engine.render_string(source, {"user": USERS[1]}) == "regular"
    assert template_engine.render_string(source, {"user": {"id": 9}}) == "old"


def test_for_loops_over_a_list() -> None:
    template_engine = TemplateEngine()
    source = (
        "{% for u in users %}{{ loop.index0 }}:{{ u.name }}{% if not loop.last %},{% endif %}{% endfor %}"
    )
    assert template_engine.render_string(source, {"users": USERS}) == "0:Ada,1:Linus"
    assert template_engine.render_string("[{% for u in users %}x{% endfor %}]", {"users": []}) == "[]"
    assert template_engine.render_string("{{ users|length }} users", {"users": USERS}) == "2 users"


def test_template_class_and_module_render_template() -> None:
    assert Template("{% if ok %}yes{% else %}no{% endif %}").render({"ok": True}) == "yes"
    assert Template("{{ a }}+{{ b }}").render({"a": 1}, b=2) == "1+2"
    assert render_template("Hello {{ name }}", {"name": "Ada"}) == "Hello Ada"
    # RAT's examples call engine.render(template, context) with a Template or a string.
    template_engine = TemplateEngine()
    assert template_engine.render(Template("{{ x }}"), {"x": "t"}) == "t"
    assert template_engine.render("{{ x }}", {"x": "s"}) == "s"


def test_none_and_undefined_render_empty_as_in_rat() -> None:
    template_engine = TemplateEngine()
    assert (
        template_engine.render_string("[{{ v }}][{{ missing }}][{{ missing.deep.attr }}]", {"v": None})
        == "[][][]"
    )
    assert template_engine.render_string("{% for x in nothing %}x{% endfor %}.") == "."
    assert template_engine.render_string("line\n") == "line\n"  # the trailing newline is kept


# ---- a template directory --------------------------------------------------------------------


def test_render_template_from_a_directory_with_include(site: Path) -> None:
    template_engine = TemplateEngine(template_dir=site)
    html = template_engine.render_template("index.html", {"title": "Users", "users": USERS})
    assert html == "<h1>Users</h1>\n<ul><li>Ada</li><li>Linus</li></ul>\n"
    # a str path works too, and get_template returns a reusable Template
    assert TemplateEngine(template_dir=str(site)).get_template("partials/user.html").render(u=USERS[1]) == (
        "<li>Linus</li>"
    )


def test_a_changed_file_is_reloaded(site: Path) -> None:
    template_engine = TemplateEngine(template_dir=site, cache=True)
    assert template_engine.render_template("note.txt", text="one") == "note: one"
    path = site / "note.txt"
    path.write_text("changed: {{ text }}", encoding="utf-8")
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert template_engine.render_template("note.txt", text="two") == "changed: two"


def test_missing_template_and_missing_directory(site: Path, tmp_path: Path) -> None:
    template_engine = TemplateEngine(template_dir=site)
    with pytest.raises(TemplateNotFound, match="nope.html"):
        template_engine.render_template("nope.html")
    with pytest.raises(TemplateNotFound, match="no template_dir"):
        TemplateEngine().render_template("index.html")
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        TemplateEngine(template_dir=tmp_path / "does-not-exist")


# ---- add_global / add_filter -----------------------------------------------------------------


def test_add_global_is_seen_by_strings_and_files(site: Path) -> None:
    template_engine = TemplateEngine(template_dir=site)
    template_engine.add_global("app_name", "RAT demo")
    assert template_engine.render_string("{{ app_name }}") == "RAT demo"
    assert template_engine.from_string("<title>{{ app_name }}</title>").render() == "<title>RAT demo</title>"
    assert template_engine.render_template("note.txt", text="{{ app_name }}") == "note: {{ app_name }}"
    assert template_engine.globals["app_name"] == "RAT demo"
    # the context wins over a global
    assert template_engine.render_string("{{ app_name }}", {"app_name": "mine"}) == "mine"


def test_add_filter_is_applied_even_after_a_first_render() -> None:
    template_engine = TemplateEngine(cache=True)
    with pytest.raises(TemplateError, match="shout"):
        template_engine.render_string("{{ name|shout }}", {"name": "ada"})
    # compiled and cached while the filter is still unknown (it sits in a branch not taken)
    source = "{% if loud %}{{ name|shout }}{% else %}{{ name }}{% endif %}"
    assert template_engine.render_string(source, {"name": "ada", "loud": False}) == "ada"
    template_engine.add_filter("shout", lambda s: s.upper() + "!")
    assert template_engine.render_string(source, {"name": "ada", "loud": True}) == "ADA!"
    template_engine.add_filter("repeat", lambda s, n=2: s * n)
    assert template_engine.render_string("{{ name|shout }}", {"name": "ada"}) == "ADA!"
    assert template_engine.render_string("{{ name|repeat(3) }}", {"name": "ab"}) == "ababab"
    # a filter of one engine does not leak into another
    with pytest.raises(TemplateError):
        TemplateEngine().render_string("{{ name|shout }}", {"name": "ada"})


# ---- auto-escaping ---------------------------------------------------------------------------

XSS = "<script>alert('x')</script>"


def test_auto_escape_is_on_by_default_for_strings() -> None:
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    assert TemplateEngine().render_string("<p>{{ name }}</p>", {"name": XSS}) == f"<p>{escaped}</p>"
    assert Template("{{ name }}").render({"name": XSS}) == escaped
    assert render_template("{{ name }}", {"name": XSS}) == escaped
    # trusted HTML is marked explicitly
    assert TemplateEngine().render_string("{{ html|safe }}", {"html": "<b>ok</b>"}) == "<b>ok</b>"


def test_auto_escape_for_html_files_but_not_text_files(site: Path) -> None:
    template_engine = TemplateEngine(template_dir=site)
    html = template_engine.render_template("index.html", {"title": XSS, "users": [{"name": XSS}]})
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert template_engine.render_template("note.txt", {"text": "<b>"}) == "note: <b>"


def test_auto_escape_can_be_turned_off() -> None:
    assert TemplateEngine(auto_escape=False).render_string("{{ name }}", {"name": XSS}) == XSS
    # the same source, compiled once with escaping and once without: two different templates
    assert Template("{{ name }}").render({"name": XSS}) != XSS
    assert Template("{{ name }}", auto_escape=False).render({"name": XSS}) == XSS
    Template.clear_cache()
    assert Template("{{ name }}", auto_escape=False, cache=False).render({"name": XSS}) == XSS


# ---- traversal -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../secret.txt", "partials/../../secret.txt", "..\\secret.txt", "C:/x.html"]
)
def test_traversal_names_are_refused(site: Path, name: str) -> None:
    template_engine = TemplateEngine(template_dir=site)
    with pytest.raises(TemplatePathError, match="refused") as info:
        template_engine.render_template(name)
    assert isinstance(info.value, TemplateError)
    assert isinstance(info.value, ValueError)


def test_absolute_path_is_refused(site: Path) -> None:
    secret = site.parent / "secret.txt"
    template_engine = TemplateEngine(template_dir=site)
    with pytest.raises(TemplatePathError, match="not absolute"):
        template_engine.render_template(str(secret))
    with pytest.raises(TemplatePathError):
        template_engine.get_template(str(site / "index.html"))  # even one inside the directory


def test_include_cannot_escape_either(site: Path) -> None:
    template_engine = TemplateEngine(template_dir=site)
    with pytest.raises(TemplatePathError, match=r"\.\./secret\.txt"):
        template_engine.render_template("sneaky.html")


def test_a_symlink_out_of_the_directory_is_refused(site: Path) -> None:
    try:
        (site / "link.html").symlink_to(site.parent / "secret.txt")
    except OSError:
        pytest.skip("no symlinks here")
    with pytest.raises(TemplatePathError, match="outside the template directory"):
        TemplateEngine(template_dir=site).render_template("link.html")


# ---- errors ----------------------------------------------------------------------------------


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        TemplateEngine().from_string("ok\n{% if x %}never closed", name="page")
    assert info.value.line == 2
    assert "page" in str(info.value)
    assert isinstance(info.value, TemplateError)


def test_runtime_error_keeps_its_cause() -> None:
    template_engine = TemplateEngine()
    template_engine.add_filter("boom", lambda v: 1 / 0)
    with pytest.raises(TemplateRuntimeError, match="ZeroDivisionError") as info:
        template_engine.render_string("{{ 1|boom }}")
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_render_template_safe_returns_the_fallback() -> None:
    assert render_template_safe("{% if %}", {}, fallback="oops") == "oops"
    assert render_template_safe("{{ a }}", {"a": 1}, fallback="oops") == "1"


# ---- in an app -------------------------------------------------------------------------------


def test_template_rendered_from_an_html_handler(site: Path) -> None:
    app = RatApp(name="template_demo")
    template_engine = TemplateEngine(auto_escape=True, cache=True, template_dir=site)
    template_engine.add_global("title", "Team")

    @app.html("/")
    def index(request_data: Any) -> str:
        return template_engine.render_template("index.html", {"users": [*USERS, {"name": XSS}]})

    with TestClient(app) as c:
        r = c.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>Team</h1>" in r.text
    assert "<li>Ada</li><li>Linus</li>" in r.text
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text


# ---- the optional dependency -----------------------------------------------------------------


def test_importing_does_not_import_jinja2() -> None:
    code = "import sys, rat_engine.templates as t; assert 'jinja2' not in sys.modules; print(t.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "rat_engine.templates"


def test_a_clear_error_without_jinja2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)  # makes ``import jinja2`` fail
    with pytest.raises(ImportError, match=r"pip install 'rat_engine\[templates\]'"):
        TemplateEngine()


def test_default_engine_exists_lazily() -> None:
    import rat_engine.templates as templates

    assert isinstance(templates.default_engine, TemplateEngine)
    assert templates.default_engine is templates.default_engine
    with pytest.raises(AttributeError):
        templates.no_such_name  # noqa: B018
