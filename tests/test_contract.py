"""The stage contract, checked statically, so `dvc status` can be trusted and each fact lives in one place.

- every dvc.yaml stage's deps cover every project module its command imports, directly or not;
- every out, metrics and plots path of dvc.yaml is a path of src/notelm/artifacts.py;
- every stage command names its inputs and outputs: each path option it passes is a dep or an out;
- the keys of params.yaml are the fields of the params dataclasses (src/notelm/params.py), both ways;
- no stage module imports another stage module, and the project's import graph has no cycle.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import shlex
from pathlib import Path

import pytest
import yaml

from notelm import artifacts
from notelm.params import SECTIONS, ModelRow

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = SRC / "notelm"


def module_file(module: str, src: Path = SRC) -> Path | None:
    """The file of project module `module` (a package's __init__.py), or None when it is not ours."""
    base = src.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imports_of(path: Path, src: Path = SRC) -> set[str]:
    """The project modules a file imports anywhere in it (top level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(src).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] == "notelm" and module_file(n, src))
    return found


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """module -> project modules it imports, for every module under src/notelm."""
    graph = {}
    for path in sorted((src / "notelm").rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = {m for m in imports_of(path, src) if m != name}
    return graph


def closure(module: str, graph: dict[str, set[str]]) -> set[str]:
    """`module` and every project module it imports, directly or not."""
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def inert_package_init(path: Path) -> bool:
    """A package __init__.py that runs nothing but its docstring (and `__version__ = ...`): importing it can
    change no output, so a stage need not list it."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return all((isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) or
               (isinstance(n, ast.Assign) and [t.id for t in n.targets if isinstance(t, ast.Name)] == ["__version__"])
               for n in body)


def stage_module(cmd: str) -> str:
    match = re.match(r"python -m (notelm\.stages\.\w+)\b", cmd)
    assert match, f"stage command {cmd!r} does not run `python -m notelm.stages.<stage>`"
    return match.group(1)


def required_deps(cmd: str, graph: dict[str, set[str]], src: Path = SRC) -> set[str]:
    """Repository paths of the modules a stage command imports, less inert package __init__ files."""
    files = {module_file(m, src) for m in closure(stage_module(cmd), graph)}
    return {str(f.relative_to(src.parent)) for f in files
            if f is not None and not (f.name == "__init__.py" and inert_package_init(f))}


def dvc_stages(root: Path = REPO) -> dict[str, dict]:
    return yaml.safe_load((root / "dvc.yaml").read_text())["stages"]


def _paths(entries) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def missing_deps(root: Path = REPO, src: Path = SRC) -> dict[str, set[str]]:
    """stage -> project modules it imports that its deps do not list (a dep directory covers its files)."""
    graph = import_graph(src)
    missing = {}
    for name, stage in dvc_stages(root).items():
        deps = _paths(stage.get("deps"))
        lacking = {f for f in required_deps(stage["cmd"], graph, src)
                   if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)}
        if lacking:
            missing[name] = lacking
    return missing


def stage_imports(src: Path = SRC) -> list[tuple[str, str]]:
    """(stage module, stage module it imports) pairs."""
    graph = import_graph(src)
    return [(m, i) for m, deps in graph.items() if m.startswith("notelm.stages.")
            for i in deps if i.startswith("notelm.stages.") and i != m]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle found by depth-first search (each reported once, from where it was entered)."""
    found, state = [], {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open":
                found.append(path[path.index(n):] + [n] if n in path else [m, n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return found


ARTIFACT_PATHS = {v for k, v in vars(artifacts).items() if k.isupper() and isinstance(v, str)} \
    | {str(artifacts.generations_path(v)) for v in artifacts.VARIANTS} \
    | {str(artifacts.split_path(s)) for s in artifacts.SPLITS}


def artifact_path(path: str) -> bool:
    """Whether `path` is a path of artifacts.py (for `models/base/${model}`, the one base_model_dir makes)."""
    if "${model}" in path:
        return path.replace("${model}", "x") == str(artifacts.base_model_dir("x"))
    return path in ARTIFACT_PATHS


def test_every_stage_lists_the_modules_it_imports():
    assert missing_deps() == {}


def test_stage_outputs_are_the_artifacts_paths():
    for name, stage in dvc_stages().items():
        for key in ("outs", "metrics", "plots"):
            for path in _paths(stage.get(key)):
                assert artifact_path(path), f"stage {name}: {key} path {path} is not in src/notelm/artifacts.py"


def test_stage_commands_name_their_inputs_and_outputs():
    for name, stage in dvc_stages().items():
        args = shlex.split(stage["cmd"])
        declared = set(_paths(stage.get("deps"))) | {p for k in ("outs", "metrics", "plots") for p in _paths(stage.get(k))}
        named = [a for a in args[3:] if not a.startswith("-")]
        assert named, f"stage {name}: the command names no path"
        for path in named:  # a dep or an out, or the directory that holds some (checkpoints: deliberately neither)
            assert path == artifacts.CHECKPOINTS or any(d == path or d.startswith(path.rstrip("/") + "/") for d in declared), \
                f"stage {name}: {path} is in the command but no dep or out is (in) it"
        for path in declared - set(_paths(stage.get("deps"))):
            assert any(path == n or path.startswith(n.rstrip("/") + "/") for n in named), \
                f"stage {name}: the command does not name its output {path}"


def test_params_yaml_keys_are_the_dataclass_fields():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(params) == {"model", "models", *SECTIONS}
    for section, cls in SECTIONS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(params[section]) == fields, f"params.yaml `{section}` differs from {cls.__name__}: " \
            f"only in params.yaml {set(params[section]) - fields}, only in the dataclass {fields - set(params[section])}"
    row_fields = {f.name for f in dataclasses.fields(ModelRow)} - {"name"}
    for name, row in params["models"].items():
        assert set(row) <= row_fields, f"models.{name}: unknown keys {set(row) - row_fields}"


def test_no_stage_imports_another_and_no_import_cycle():
    assert stage_imports() == []
    assert cycles(import_graph()) == []


# ------------------------------------------------------------------ the checks catch what they should


def _copy_src(tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(SRC, tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    return tmp_path


def test_a_dropped_dep_is_caught(tmp_path):
    root = _copy_src(tmp_path)
    text = (root / "dvc.yaml").read_text()
    (root / "dvc.yaml").write_text(text.replace("    - src/notelm/loss.py\n", "", 1))
    assert "src/notelm/loss.py" in missing_deps(root, root / "src")["train"]


def test_a_stage_to_stage_import_and_a_cycle_are_caught(tmp_path):
    root = _copy_src(tmp_path)
    report = root / "src/notelm/stages/report.py"
    report.write_text(report.read_text() + "\nfrom notelm.stages.evaluate import split_sentences  # noqa\n")
    assert ("notelm.stages.report", "notelm.stages.evaluate") in stage_imports(root / "src")
    assert "report" in missing_deps(root, root / "src")  # and its deps no longer cover what it runs
    params = root / "src/notelm/params.py"
    params.write_text(params.read_text() + "\nfrom notelm import plan  # noqa\n")
    assert cycles(import_graph(root / "src"))


@pytest.mark.parametrize("stage", sorted(dvc_stages()))
def test_the_stage_module_is_named_after_its_stage(stage):
    module = stage_module(dvc_stages()[stage]["cmd"]).rsplit(".", 1)[1]
    assert stage == module or stage.startswith(f"{module}_"), (stage, module)
    assert (REPO / "tests" / f"test_{module}.py").is_file()
