"""Templates with RAT Engine's Python API, built on Jinja2.

Jinja2 is an optional extra (``pip install 'rat_engine[templates]'``). It is imported the first
time a template is compiled, so importing this module costs nothing and works without it.

RAT Engine's calls work unchanged::

    from rat_engine.templates import Template, TemplateEngine, render_template

    engine = TemplateEngine(auto_escape=True, cache=True)
    engine.add_global("app_name", "Demo")
    engine.add_filter("shout", lambda s: s.upper() + "!")
    html = engine.render_string("<h1>{{ app_name|shout }}</h1>", {"user": user})
    page = engine.from_string("{% for u in users %}{{ u.name }}{% endfor %}").render({"users": users})
    text = render_template("Hello {{ name }}", {"name": "Ada"})
    Template("{% if ok %}yes{% endif %}").render({"ok": True})

Templates in a directory (rat_engine's addition; RAT Engine only renders strings)::

    engine = TemplateEngine(template_dir="templates")
    engine.render_template("index.html", {"items": items})

Deliberate differences from RAT Engine:

* The syntax is Jinja2's, a superset of RAT's ``{{ var }}``, ``{% if %}``/``{% elif %}``/
  ``{% else %}`` and ``{% for %}``: filters take arguments, and ``{% extends %}``,
  ``{% include %}`` and macros work. Negation is ``{% if not x %}`` (RAT: ``!x``), and
  ``loop.index`` counts from 1 (RAT's counts from 0; ``loop.index0`` counts from 0 in both).
* RAT's unescaped ``{{{ var }}}`` does not exist: write ``{{ var|safe }}``.
* Filters given to ``add_filter`` are applied (RAT's parser never applied any filter), and
  globals given to ``add_global`` are seen by every template of the engine, not only by
  ``render_string``.
* ``TemplateEngine`` also has ``render(template, context)`` (called by RAT's own examples, though
  RAT's engine lacks it), a keyword-only ``template_dir`` with ``render_template(name, context)``
  and ``get_template(name)``, and ``clear_cache()``.
* Errors are ``TemplateSyntaxError``, ``TemplateRuntimeError``, ``TemplateNotFound`` and
  ``TemplatePathError``, all subclasses of ``TemplateError`` as in RAT; the Jinja2 error is kept
  as ``__cause__``.
* RAT's JavaScript-style ``${var}`` conversion (``JSTemplateConverter``, ``render_js_template``)
  is not provided.

As in RAT, ``None`` and undefined names (and attributes of undefined names) render as an empty
string.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "Template",
    "TemplateEngine",
    "TemplateError",
    "TemplateNotFound",
    "TemplatePathError",
    "TemplateRuntimeError",
    "TemplateSyntaxError",
    "render_template",
    "render_template_safe",
]

logger = logging.getLogger(__name__)

_MISSING_JINJA2 = "rat_engine.templates needs Jinja2: pip install 'rat_engine[templates]'"
# Files with these extensions are HTML-escaped when auto_escape is on; other files (.txt, .md)
# are not. Templates made from strings are always escaped when auto_escape is on.
_ESCAPED_EXTENSIONS = ("html", "htm", "xml")
_STRING_CACHE_SIZE = 256
_FILE_CACHE_SIZE = 400


class TemplateError(Exception):
    """Base class of every error raised by this module."""


class TemplateSyntaxError(TemplateError):
    """A template that does not compile. ``line`` is 1-based when known."""

    def __init__(
        self, message: str, line: int | None = None, column: int | None = None, *, name: str | None = None
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.name = name
        where = ", ".join(
            part
            for part in (name or "", f"line {line}" if line else "", f"column {column}" if column else "")
            if part
        )
        super().__init__(f"{message} ({where})" if where else message)


class TemplateRuntimeError(TemplateError):
    """A template that compiled but failed while rendering (the original error is ``__cause__``)."""


class TemplateNotFound(TemplateError, LookupError):
    """No template of that name in the template directory."""


class TemplatePathError(TemplateError, ValueError):
    """A template name refused because it could reach outside the template directory."""


def _import_jinja2() -> None:
    try:
        import jinja2  # noqa: F401
    except ImportError as exc:
        raise ImportError(_MISSING_JINJA2) from exc


def _finalize(value: Any) -> Any:
    """``{{ none_value }}`` renders as ``""``, as in RAT Engine (Jinja2 alone prints ``None``)."""
    return "" if value is None else value


def _check_name(name: str) -> None:
    if (
        not name
        or "\x00" in name
        or "\\" in name
        or PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).drive
        or ".." in name.split("/")
    ):
        raise TemplatePathError(
            f"template name {name!r} refused: use a path relative to the template directory, "
            "without '..' and not absolute"
        )


def _load_source(root: Path, name: str) -> tuple[str, str, Callable[[], bool]] | None:
    """Jinja2 loader function: the source of ``root/name``; ``None`` (not found) if missing.

    Refuses ``..``, absolute paths, drive letters and backslashes outright, and then anything
    whose real path (symlinks followed) is outside ``root``. This runs for ``{% include %}`` and
    ``{% extends %}`` too, since they load through the same loader.
    """
    _check_name(name)
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise TemplatePathError(f"template name {name!r} refused: it resolves outside the template directory")
    try:
        mtime = path.stat().st_mtime
        source = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None

    def uptodate() -> bool:
        try:
            return path.stat().st_mtime == mtime
        except OSError:
            return False

    return source, str(path), uptodate


def _new_environment(*, auto_escape: bool, cache: bool, root: Path | None) -> jinja2.Environment:
    _import_jinja2()
    import jinja2

    autoescape: bool | Callable[[str | None], bool] = False
    if auto_escape:
        autoescape = jinja2.select_autoescape(
            enabled_extensions=_ESCAPED_EXTENSIONS,
            disabled_extensions=(),
            default_for_string=True,
            default=False,
        )
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(partial(_load_source, root)) if root is not None else None,
        autoescape=autoescape,
        undefined=jinja2.ChainableUndefined,
        finalize=_finalize,
        keep_trailing_newline=True,
        cache_size=_FILE_CACHE_SIZE if cache else 0,
        auto_reload=True,
    )


def _translate(exc: Exception, name: str) -> TemplateError:
    import jinja2

    if isinstance(exc, jinja2.TemplateNotFound):
        return TemplateNotFound(f"template {exc.name!r} not found")
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateSyntaxError(exc.message or str(exc), exc.lineno, name=exc.name or name)
    return TemplateRuntimeError(f"rendering {name} failed: {type(exc).__name__}: {exc}")


class _StringCache:
    """Compiled string templates, newest last, at most ``_STRING_CACHE_SIZE`` of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, jinja2.Template] = OrderedDict()

    def compile(self, env: jinja2.Environment, source: str) -> jinja2.Template:
        with self._lock:
            compiled = self._items.get(source)
            if compiled is not None:
                self._items.move_to_end(source)
                return compiled
        compiled = env.from_string(source)
        with self._lock:
            self._items[source] = compiled
            while len(self._items) > _STRING_CACHE_SIZE:
                self._items.popitem(last=False)
        return compiled

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _compile_string(
    env: jinja2.Environment, source: str, name: str, cache: _StringCache | None
) -> jinja2.Template:
    try:
        return cache.compile(env, source) if cache is not None else env.from_string(source)
    except Exception as exc:
        raise _translate(exc, name) from exc


def _render(
    compiled: jinja2.Template, context: Mapping[str, Any] | None, kwargs: dict[str, Any], name: str
) -> str:
    values = dict(context) if context else {}
    values.update(kwargs)
    try:
        return compiled.render(values)
    except TemplateError:
        raise  # a refused {% include %} path, raised by the loader
    except Exception as exc:
        raise _translate(exc, name) from exc


class Template:
    """A compiled template: ``Template(source).render({"name": "Ada"})``.

    ``auto_escape`` (on by default) HTML-escapes every ``{{ value }}``: RAT users render user
    data into HTML pages, and an unescaped ``<script>`` in a user's name would run in every
    visitor's browser. Mark trusted HTML with ``{{ value|safe }}``.
    """

    _environments: ClassVar[dict[bool, jinja2.Environment]] = {}
    _environments_lock: ClassVar[threading.Lock] = threading.Lock()
    # One compiled-string cache per auto_escape setting: the same source compiles differently.
    _strings: ClassVar[dict[bool, _StringCache]] = {}

    def __init__(
        self, template_string: str, name: str = "<template>", auto_escape: bool = True, cache: bool = True
    ) -> None:
        self.template_string = template_string
        self.name = name
        self.auto_escape = auto_escape
        self.cache = cache
        with Template._environments_lock:
            env = Template._environments.get(auto_escape)
            if env is None:
                env = Template._environments[auto_escape] = _new_environment(
                    auto_escape=auto_escape, cache=False, root=None
                )
            strings = Template._strings.setdefault(auto_escape, _StringCache())
        self._compiled = _compile_string(env, template_string, name, strings if cache else None)

    @classmethod
    def _wrap(
        cls, compiled: jinja2.Template, template_string: str, name: str, auto_escape: bool, cache: bool
    ) -> Template:
        template = cls.__new__(cls)
        template.template_string = template_string
        template.name = name
        template.auto_escape = auto_escape
        template.cache = cache
        template._compiled = compiled
        return template

    def render(self, context: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
        """The rendered text; keyword arguments are added to ``context``."""
        return _render(self._compiled, context, kwargs, self.name)

    @classmethod
    def clear_cache(cls) -> None:
        """Forget the compiled strings of ``Template(...)`` (an engine has its own cache)."""
        with Template._environments_lock:
            for strings in Template._strings.values():
                strings.clear()

    def __repr__(self) -> str:
        return f"<Template {self.name!r}>"


class TemplateEngine:
    """Templates sharing globals, filters and settings.

    ``auto_escape`` (on by default) HTML-escapes ``{{ value }}`` in templates made from strings
    and in ``.html``, ``.htm`` and ``.xml`` files, because RAT users render user data into pages:
    without escaping, a ``<script>`` in a user's input runs in every visitor's browser. Other
    files (``.txt``, ``.md``) are not escaped. ``{{ value|safe }}`` marks trusted HTML.

    ``cache`` keeps compiled templates (strings and files; a changed file is reloaded).
    ``template_dir`` is where ``render_template(name)`` and ``get_template(name)`` look; names
    with ``..``, absolute names and symlinks leading outside it raise ``TemplatePathError``.
    """

    def __init__(
        self,
        auto_escape: bool = True,
        cache: bool = True,
        *,
        template_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.auto_escape = auto_escape
        self.cache = cache
        self.template_dir: Path | None = None
        if template_dir is not None:
            root = Path(template_dir).resolve()
            if not root.is_dir():
                raise FileNotFoundError(f"template directory {os.fspath(template_dir)!r} does not exist")
            self.template_dir = root
        self.environment = _new_environment(auto_escape=auto_escape, cache=cache, root=self.template_dir)
        self.globals: dict[str, Any] = self.environment.globals
        self.filters: dict[str, Callable[..., Any]] = self.environment.filters
        self._strings = _StringCache() if cache else None

    def add_global(self, name: str, value: Any) -> None:
        """Make ``name`` visible in every template of this engine."""
        self.globals[name] = value

    def add_filter(self, name: str, func: Callable[..., Any]) -> None:
        """Register ``{{ value|name }}``; ``func(value, *args)`` returns the new value."""
        self.filters[name] = func

    def from_string(self, template_string: str, name: str = "<template>") -> Template:
        """Compile a template from a string (auto-escaped when ``auto_escape`` is on)."""
        compiled = _compile_string(self.environment, template_string, name, self._strings)
        return Template._wrap(compiled, template_string, name, self.auto_escape, self.cache)

    def render_string(
        self, template_string: str, context: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> str:
        """Compile and render a string template."""
        return self.from_string(template_string).render(context, **kwargs)

    def render(
        self, template: Template | str, context: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> str:
        """Render a ``Template`` or a template string."""
        if isinstance(template, str):
            return self.render_string(template, context, **kwargs)
        return template.render(context, **kwargs)

    def get_template(self, name: str) -> Template:
        """The template file ``name`` (a ``/``-separated path inside ``template_dir``)."""
        if self.template_dir is None:
            raise TemplateNotFound(
                f"template {name!r}: this TemplateEngine has no template_dir "
                "(use TemplateEngine(template_dir=...), or render_string for strings)"
            )
        _check_name(name)
        try:
            compiled = self.environment.get_template(name)
        except TemplateError:
            raise
        except Exception as exc:
            raise _translate(exc, name) from exc
        return Template._wrap(compiled, "", name, self.auto_escape, self.cache)

    def render_template(self, name: str, context: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
        """Render the template file ``name`` from ``template_dir``."""
        return self.get_template(name).render(context, **kwargs)

    def clear_cache(self) -> None:
        """Forget compiled templates; the next render compiles again."""
        if self._strings is not None:
            self._strings.clear()
        if self.environment.cache is not None:
            self.environment.cache.clear()


_default: TemplateEngine | None = None
_default_lock = threading.Lock()


def _default_engine() -> TemplateEngine:
    global _default
    with _default_lock:
        if _default is None:
            _default = TemplateEngine()
        return _default


def __getattr__(name: str) -> TemplateEngine:
    # ``default_engine`` as in RAT Engine, created on first use so that importing costs nothing.
    if name == "default_engine":
        return _default_engine()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def render_template(template_string: str, context: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
    """Render a template *string* with the default engine (RAT Engine's module function).

    For a file in a directory, use ``TemplateEngine(template_dir=...).render_template(name)``.
    """
    return _default_engine().render_string(template_string, context, **kwargs)


def render_template_safe(
    template_string: str, context: Mapping[str, Any] | None = None, fallback: str = ""
) -> str:
    """``render_template``, or ``fallback`` (the error is logged) if the template fails."""
    try:
        return render_template(template_string, context)
    except TemplateError:
        logger.warning("template rendering failed; returning the fallback", exc_info=True)
        return fallback
