"""The stage contract, checked statically, so `dvc status` can be trusted and each fact lives in one place.

- every dvc.yaml stage's deps cover every project module its command imports, directly or not;
- every out, metrics and plots path of dvc.yaml is a path of src/notelm/core/paths.py;
- every stage command names its inputs and outputs: each path option it passes is a dep or an out, and equals
  the default of that field of the stage's `Paths` dataclass (so a stage run by hand does what dvc repro does);
- a module every stage imports (the core) stays small, so that editing it rarely means re-running everything;
  `python tests/test_contract.py` prints, for every module, the stages that list it;
- no stage module imports another stage module, and the project's import graph has no cycle;
- imports point down the rooms (`ROOMS`): a module imports only modules of its own room or of rooms below it;
- a folder is a stage's dep only where the stage imports every module in it;
- tests mirror the rooms: tests/<room>/test_<module>.py for a module src/notelm/<room>/<module>.py (or one of
  `CROSS_MODULE_TESTS`), and every stage has tests/stages/test_<stage>.py;
- .dvcignore keeps Python's caches out of the dependency hashes.
(params.yaml against the section dataclasses: tests/config/test_config.py.)
"""

from __future__ import annotations

import ast
import dataclasses
import re
import shlex
from pathlib import Path

import pytest
import yaml

from notelm.config.names import VARIANTS
from notelm.core import paths as project_paths

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


ARTIFACT_PATHS = {v for k, v in vars(project_paths).items() if k.isupper() and isinstance(v, str)} \
    | {str(project_paths.generations_path(v)) for v in VARIANTS} \
    | {str(project_paths.split_path(s)) for s in project_paths.SPLITS}


def artifact_path(path: str) -> bool:
    """Whether `path` is a path of core/paths.py (for `models/base/${model}`, the one base_model_dir makes)."""
    if "${model}" in path:
        return path.replace("${model}", "x") == str(project_paths.base_model_dir("x"))
    return path in ARTIFACT_PATHS


# The rooms of src/notelm, bottom first: a module may import its own room and the rooms before it. The
# top-level modules (app, arena, compare, study, readme, cli) are the consumers, above every room; cluster/ is a
# consumer room (no stage imports it), below them.
ROOMS = ("core", "config", "data", "training", "generation", "evaluation", "privacy", "report", "stages", "cluster")


def rank(module: str) -> int:
    """The room's place in `ROOMS` (consumers: len(ROOMS); the package `notelm` itself, inert: -1)."""
    parts = module.split(".")
    if len(parts) == 1:
        return -1
    return ROOMS.index(parts[1]) if parts[1] in ROOMS else len(ROOMS)


def upward_imports(src: Path = SRC) -> list[tuple[str, str]]:
    """(module, module of a higher room it imports) pairs."""
    return sorted((m, d) for m, deps in import_graph(src).items() for d in deps if rank(d) > rank(m))


def partial_folder_deps(root: Path = REPO, src: Path = SRC) -> dict[str, set[str]]:
    """stage -> modules inside a folder it lists as a dep that it does not import (a folder dep would re-run it
    for an edit of code it never runs)."""
    graph, found = import_graph(src), {}
    for name, stage in dvc_stages(root).items():
        needed = required_deps(stage["cmd"], graph, src)
        for dep in _paths(stage.get("deps")):
            folder = src.parent / dep
            if dep.startswith("src/") and folder.is_dir():
                files = {str(f.relative_to(src.parent)) for f in folder.rglob("*.py")
                         if not (f.name == "__init__.py" and inert_package_init(f))}
                if files - needed:
                    found.setdefault(name, set()).update(files - needed)
    return found


# Test files that test several modules together, so no single module names them.
CROSS_MODULE_TESTS = {
    "config/test_config.py": "params.yaml against every section's dataclass, the catalogue's rows, `notelm params`",
    "training/test_methods.py": "full, LoRA and QLoRA on a tiny model of every catalogue family",
    "stages/test_train_processes.py": "the train stage in subprocesses: killed and resumed, accelerate launch",
    "test_compile.py": "train.compile and generate.compile against eager (trainer and decoding)",
    "test_contract.py": "this file",
    "test_pipeline.py": "the whole dvc.yaml pipeline end to end",
    "test_cluster.py": "the grid on a real one-node Slurm, the FSDP batch script, the SkyPilot task",
    "test_app_browser.py": "the app in headless Chromium",
}


def unmirrored_tests(tests: Path = REPO / "tests", src: Path = PACKAGE) -> list[str]:
    """Test files not named after a module of their room (tests/<room>/test_<module>.py), less the listed ones."""
    found = []
    for path in sorted(tests.rglob("test_*.py")):
        rel = path.relative_to(tests)
        module = src.joinpath(*rel.parts[:-1], rel.name.removeprefix("test_"))
        if not module.is_file() and str(rel) not in CROSS_MODULE_TESTS:
            found.append(str(rel))
    return found


CORE_BUDGET = 150  # lines: the most a module that every stage imports may have


def users(root: Path = REPO, src: Path = SRC) -> dict[str, list[str]]:
    """Repository path of every src module -> the dvc.yaml stages whose deps list it or its folder (a re-run map)."""
    stages = dvc_stages(root)
    files = sorted(str(p.relative_to(src.parent)) for p in (src / "notelm").rglob("*.py"))
    listed = {n: _paths(st.get("deps")) for n, st in stages.items()}
    return {f: [n for n, deps in listed.items() if any(f == d or f.startswith(d + "/") for d in deps)] for f in files}


def core(root: Path = REPO, src: Path = SRC) -> dict[str, int]:
    """The modules every stage lists, with their line counts."""
    n = len(dvc_stages(root))
    return {f: len((src.parent / f).read_text().splitlines()) for f, st in users(root, src).items() if len(st) == n}


def command_options(cmd: str) -> dict[str, str | list[str]]:
    """`--name value [value ...]` options of a stage command, by dataclass field name."""
    out, key = {}, None
    for arg in shlex.split(cmd)[3:]:
        if arg.startswith("--"):
            key = arg[2:].replace("-", "_")
            out[key] = []
        elif key is not None:
            out[key].append(arg)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def test_every_stage_lists_the_modules_it_imports():
    assert missing_deps() == {}


def test_stage_outputs_are_the_artifacts_paths():
    for name, stage in dvc_stages().items():
        for key in ("outs", "metrics", "plots"):
            for path in _paths(stage.get(key)):
                assert artifact_path(path), f"stage {name}: {key} path {path} is not in src/notelm/core/paths.py"


def test_stage_commands_name_their_inputs_and_outputs():
    for name, stage in dvc_stages().items():
        args = shlex.split(stage["cmd"])
        declared = set(_paths(stage.get("deps"))) | {p for k in ("outs", "metrics", "plots") for p in _paths(stage.get(k))}
        named = [a for a in args[3:] if not a.startswith("-")]
        assert named, f"stage {name}: the command names no path"
        for path in named:  # a dep or an out, or the directory that holds some (checkpoints: deliberately neither)
            assert path == project_paths.CHECKPOINTS or any(d == path or d.startswith(path.rstrip("/") + "/") for d in declared), \
                f"stage {name}: {path} is in the command but no dep or out is (in) it"
        for path in declared - set(_paths(stage.get("deps"))):
            assert any(path == n or path.startswith(n.rstrip("/") + "/") for n in named), \
                f"stage {name}: the command does not name its output {path}"


@pytest.mark.parametrize("stage", sorted(dvc_stages()))
def test_the_command_passes_the_stage_paths_defaults(stage):
    """Each option the command passes is a field of the stage's `Paths`, and equals its default unless the
    field has none (a required input, or one derived from `model`, shown as `${model}` in dvc.yaml)."""
    import importlib

    cmd = dvc_stages()[stage]["cmd"]
    fields = {f.name: f for f in dataclasses.fields(importlib.import_module(stage_module(cmd)).Paths)}
    for name, value in command_options(cmd).items():
        if name == "params":
            continue
        assert name in fields, f"stage {stage}: --{name} is no field of its Paths"
        default = fields[name].default
        if default not in (dataclasses.MISSING, None):
            shown = list(default) if isinstance(default, tuple) else default
            assert value == shown or "${" in str(value), f"stage {stage}: --{name} {value} != Paths default {shown}"


def test_the_core_every_stage_imports_stays_small():
    found = core()
    assert {"src/notelm/core/errors.py", "src/notelm/core/runner.py", "src/notelm/core/paths.py"} <= set(found)
    assert {f: n for f, n in found.items() if n > CORE_BUDGET} == {}, f"core modules over {CORE_BUDGET} lines"
    assert "src/notelm/report/labels.py" not in found and "src/notelm/config/names.py" not in found


def test_no_stage_imports_another_and_no_import_cycle():
    assert stage_imports() == []
    assert cycles(import_graph()) == []


def test_imports_point_down_the_rooms():
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} == set(ROOMS)
    assert upward_imports() == []


def test_rooms_init_files_are_docstrings_only():
    """A re-exporting __init__ would make every stage import its whole room (and re-run on any edit in it)."""
    for init in PACKAGE.rglob("__init__.py"):
        assert inert_package_init(init), f"{init} runs code; keep a package's __init__.py a docstring"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} has no docstring saying what the room holds"


def test_a_folder_dep_covers_only_modules_the_stage_imports():
    assert partial_folder_deps() == {}


def test_tests_mirror_the_rooms():
    assert unmirrored_tests() == []
    for path in CROSS_MODULE_TESTS:
        assert (REPO / "tests" / path).is_file(), f"CROSS_MODULE_TESTS lists {path}, which is gone"


def test_dvcignore_keeps_python_caches_out_of_hashes():
    patterns = (REPO / ".dvcignore").read_text().split()
    assert "__pycache__" in patterns and "*.pyc" in patterns


# ------------------------------------------------------------------ the checks catch what they should


def _copy_src(tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(SRC, tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    return tmp_path


def test_a_dropped_dep_is_caught(tmp_path):
    root = _copy_src(tmp_path)
    text = (root / "dvc.yaml").read_text()
    (root / "dvc.yaml").write_text(text.replace("    - src/notelm/training\n", "", 1))  # the train stage's room
    assert "src/notelm/training/loss.py" in missing_deps(root, root / "src")["train"]


def test_a_stage_to_stage_import_and_a_cycle_are_caught(tmp_path):
    root = _copy_src(tmp_path)
    report = root / "src/notelm/stages/report.py"
    report.write_text(report.read_text() + "\nfrom notelm.stages.evaluate import split_sentences  # noqa\n")
    assert ("notelm.stages.report", "notelm.stages.evaluate") in stage_imports(root / "src")
    assert "report" in missing_deps(root, root / "src")  # and its deps no longer cover what it runs
    loader = root / "src/notelm/core/loader.py"
    loader.write_text(loader.read_text() + "\nfrom notelm.training import plan  # noqa\n")
    assert cycles(import_graph(root / "src"))
    assert ("notelm.core.loader", "notelm.training.plan") in upward_imports(root / "src")


def test_a_partial_folder_dep_and_an_unmirrored_test_are_caught(tmp_path):
    root = _copy_src(tmp_path)
    text = (root / "dvc.yaml").read_text()
    (root / "dvc.yaml").write_text(text.replace("    - src/notelm/stages/audit.py\n",
                                                "    - src/notelm/stages/audit.py\n    - src/notelm/privacy\n", 1))
    assert "src/notelm/privacy/memorize.py" in partial_folder_deps(root, root / "src")["audit"]
    tests = tmp_path / "tests"
    (tests / "privacy").mkdir(parents=True)
    (tests / "privacy" / "test_leakage.py").write_text("")
    (tests / "privacy" / "test_audit.py").write_text("")
    assert unmirrored_tests(tests, root / "src/notelm") == ["privacy/test_leakage.py"]


@pytest.mark.parametrize("stage", sorted(dvc_stages()))
def test_the_stage_module_is_named_after_its_stage(stage):
    module = stage_module(dvc_stages()[stage]["cmd"]).rsplit(".", 1)[1]
    assert stage == module or stage.startswith(f"{module}_"), (stage, module)
    assert (REPO / "tests" / "stages" / f"test_{module}.py").is_file()


if __name__ == "__main__":  # the re-run map: which stages list each module (what editing it re-runs)
    for module, stages in users().items():
        print(f"{module:45s} {', '.join(stages) or '(no stage: a consumer)'}")
