"""Imports point one way, as README.md's "Where the code lives" says: every module of modeling/, tokenization/ and
training/ imports only modules of its own unit or of units earlier in LAYERS (imports inside functions count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"modeling": "wenlm.modeling", "tokenization": "wenlm.tokenization", "training": "wenlm.training"}

# Lowest first. A unit is a package or module; a module belongs to the longest unit its dotted name starts with.
LAYERS = [
    "wenlm.modeling",
    "wenlm.tokenization",
    "wenlm.training",  # the namespace's own __init__ (a docstring)
    "wenlm.training.utils",
    "wenlm.training.args",
    "wenlm.training.corpus",
    "wenlm.training.data",
    "wenlm.training.model_folder",
    "wenlm.training.run_folder",
    "wenlm.training.model_config",
    "wenlm.training.trainer",
    "wenlm.training.retrieval",
    "wenlm.training.evaluation",
    "wenlm.training.inspection",
    "wenlm.training.export",
    "wenlm.training.scaling.fit",
    "wenlm.training.scaling.results",
    "wenlm.training.scaling.run",
    "wenlm.training.scaling.report",
    "wenlm.training.scaling",
    "wenlm.training.cards",
    "wenlm.training.report",
    "wenlm.training.hub",
    "wenlm.training.pretraining",
    "wenlm.training.finetuning",
    "wenlm.training.commands",
    "wenlm.training.cli",
]


def module_name(path: Path) -> str:
    folder = path.relative_to(ROOT).parts[0]
    parts = path.relative_to(ROOT / folder).with_suffix("").parts
    dotted = ".".join((FOLDERS[folder], *parts))
    return dotted.removesuffix(".__init__")


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of every wenlm import in `source`, the code of `module`, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            # `from wenlm.training import trainer` imports the module wenlm.training.trainer.
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.startswith("wenlm.")]


def unit_of(dotted: str) -> str | None:
    matches = [unit for unit in LAYERS if dotted == unit or dotted.startswith(unit + ".")]
    return max(matches, key=len) if matches else None


def upward_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    own = unit_of(module)
    wrong = []
    for line, name in imported_modules(source, module, is_package):
        target = unit_of(name)
        if target is not None and target != own and LAYERS.index(target) > LAYERS.index(own):
            wrong.append(f"line {line}: {name} ({target} is above {own})")
    return wrong


def source_files() -> list[Path]:
    return sorted(path for folder in FOLDERS for path in (ROOT / folder).rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    assert [path for path in source_files() if unit_of(module_name(path)) is None] == []


@pytest.mark.parametrize("path", source_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_point_down_the_layers(path):
    wrong = upward_imports(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")
    assert wrong == [], f"{path.relative_to(ROOT)} imports upward:\n" + "\n".join(wrong)


def test_an_upward_import_is_caught_even_inside_a_function():
    source = "import os\n\ndef helper():\n    from wenlm.training.commands.pretrain import main\n"
    assert upward_imports(source, "wenlm.training.utils.text") == [
        "line 4: wenlm.training.commands.pretrain.main (wenlm.training.commands is above wenlm.training.utils)"
    ]
    relative = "from ..cards import card\n"
    assert upward_imports(relative, "wenlm.training.scaling.study") == [
        "line 1: wenlm.training.cards.card (wenlm.training.cards is above wenlm.training.scaling)"
    ]


def test_every_code_package_is_installed_by_pyproject():
    """A package missing from pyproject's explicit list installs nowhere but an editable checkout."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = {prefix: Path(folder) for prefix, folder in setuptools["package-dir"].items()}
    packages = set()
    for prefix, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            packages.add(".".join((prefix, *relative)))
    assert packages - set(setuptools["packages"]) == set()
