"""Finding plugins (entry points, or ``module:Class`` for one that is not installed) and configuring them.

Plugins are registered under the entry-point group ``eventsink.workers``; nothing here names a concrete
plugin. A ``module:Class`` spec loads a plugin straight from an importable module, which is how a plugin
under development (or one defined in a test suite) runs without being installed.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from sink_lib.errors import EventSinkError
from sink_lib.settings import build_settings
from sink_lib.topology import WORKERS_ENTRY_POINT_GROUP

from ..errors import PluginError
from ..plugin import WorkerPlugin


@dataclass(frozen=True)
class PluginInfo:
    """What ``eventsink worker list`` shows about one installed plugin."""

    name: str
    target: str
    description: str
    available: bool
    problem: str = ""


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=WORKERS_ENTRY_POINT_GROUP)}


def load_plugin_class(spec: str) -> type[WorkerPlugin]:
    """The plugin class named by ``spec``: an entry-point name, or ``package.module:Class``.

    Raises PluginError naming the installed plugins when ``spec`` is unknown, and the missing package
    when the plugin's optional dependencies (its extra) are not installed.
    """
    installed = _entry_points()
    if spec in installed:
        target = installed[spec].value
        loader = installed[spec].load
    elif ":" in spec:
        target = spec
        module_name, _, attr = spec.partition(":")

        def loader() -> Any:
            return getattr(importlib.import_module(module_name), attr)

    else:
        names = ", ".join(sorted(installed)) or "none"
        raise PluginError(f"unknown worker {spec!r}; installed: {names} (or give package.module:Class)")
    try:
        cls = loader()
    except ImportError as exc:
        if spec in installed:
            hint = f"install its extra, e.g. pip install 'eventsink[{spec}]'"
        else:  # a module given by path: most often its folder is not on the import path
            hint = "is its folder on PYTHONPATH (e.g. PYTHONPATH=. when it is in the current one)?"
        raise PluginError(f"worker {spec!r} ({target}) cannot be imported: {exc}; {hint}") from exc
    except AttributeError as exc:
        raise PluginError(f"worker {spec!r}: {target} not found: {exc}") from exc
    if not (inspect.isclass(cls) and issubclass(cls, WorkerPlugin)):
        raise PluginError(f"worker {spec!r}: {target} is not a WorkerPlugin subclass")
    if not cls.name:
        raise PluginError(f"worker {spec!r}: {target} has no `name`")
    return cls


def build_plugin(cls: type[WorkerPlugin], **overrides: Any) -> WorkerPlugin:
    """An instance of ``cls`` with its settings read from the environment (plus ``overrides``).

    Invalid settings raise ConfigurationError naming the environment variable.
    """
    settings = build_settings(cls.settings_model, **overrides)
    try:
        return cls(settings)
    except EventSinkError:
        raise
    except Exception as exc:
        raise PluginError(f"worker {cls.name!r} could not be created: {exc!r}") from exc


def describe_plugins() -> list[PluginInfo]:
    """Every installed plugin with its description and whether its imports are available."""
    out = []
    for name, ep in sorted(_entry_points().items()):
        try:
            cls = ep.load()
        except ImportError as exc:
            missing = exc.name or str(exc)
            out.append(PluginInfo(name, ep.value, "", False, f"missing {missing}: pip install 'eventsink[{name}]'"))
            continue
        except Exception as exc:
            out.append(PluginInfo(name, ep.value, "", False, f"broken: {exc!r}"))
            continue
        doc = inspect.getdoc(cls) or ""
        out.append(PluginInfo(name, ep.value, doc.splitlines()[0] if doc else "", True))
    return out
