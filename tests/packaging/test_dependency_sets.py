"""pyproject.toml, environment.yml and docker/Dockerfile declare the same Python dependencies.

Names are compared PEP 503-normalised, with their extras and version specifiers. The only differences allowed are
the documented ones in ``DOCKER_RULES`` / ``CONDA_RULES``; any other difference fails with a list of all of them.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
ENVIRONMENT = ROOT / "environment.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
MAKEFILE = ROOT / "Makefile"

TRAINER_STAGE = "trainer"
MLFLOW_STAGE = "mlflow"

# The documented differences.
# Docker (the CUDA trainer image):
#   - torch is the base image's CUDA build (pytorch/pytorch:<torch>-cuda12.x-...), never reinstalled from PyPI;
#   - faiss-gpu-cu12 replaces faiss-cpu, with the same version specifier (both publish faiss releases);
#   - the `test` extra is not installed (tests run outside the image);
#   - open-clip-torch is installed with --no-deps at the Makefile's pin (only its BPE vocabulary file is used).
# environment.yml (a development environment, like `make setup`):
#   - installs every extra, `test` included;
#   - installs open-clip-torch at the Makefile's pin (with its dependencies: a PyPI torch has a matching torchvision).
DOCKER_RULES = {
    "provided_by_base_image": {"torch"},
    "substitutes": {"faiss-cpu": "faiss-gpu-cu12"},
    "extras_not_installed": {"test"},
}
CONDA_RULES = {
    # Conda supplies the toolchain only; every Python package goes under `pip:` with pyproject's specifiers.
    "conda_toolchain": {"python", "pip", "postgresql"},
}
EXTRA_RUNTIME = "open-clip-torch"  # installed by Makefile, Dockerfile and environment.yml, not in pyproject


def canonical(name: str) -> str:
    """PEP 503 normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Dep:
    name: str
    extras: frozenset[str]
    specifier: SpecifierSet

    @classmethod
    def parse(cls, text: str) -> Dep:
        req = Requirement(text)
        return cls(canonical(req.name), frozenset(canonical(e) for e in req.extras), req.specifier)

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras}{self.specifier}"


def as_map(deps, problems: list[str] | None = None, where: str = "") -> dict[str, Dep]:
    """name -> Dep; a name declared twice differently is reported in ``problems`` (or raised without it)."""
    out: dict[str, Dep] = {}
    for dep in deps:
        if dep.name in out and out[dep.name] != dep:
            message = f"{where}: {dep.name} declared twice, differently: {out[dep.name]} / {dep}"
            if problems is None:
                raise AssertionError(message)
            problems.append(message)
        out[dep.name] = dep
    return out


def differences(expected: dict[str, Dep], actual: dict[str, Dep], where: str) -> list[str]:
    lines = []
    for name in sorted(expected.keys() - actual.keys()):
        lines.append(f"{where}: missing {expected[name]}")
    for name in sorted(actual.keys() - expected.keys()):
        lines.append(f"{where}: not in pyproject.toml (nor an allowed difference): {actual[name]}")
    for name in sorted(expected.keys() & actual.keys()):
        if expected[name] != actual[name]:
            lines.append(f"{where}: {actual[name]} but expected {expected[name]}")
    return lines


# ---------------------------------------------------------------------------------------------------- parsers


def pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def pyproject_sets() -> tuple[dict[str, Dep], dict[str, dict[str, Dep]]]:
    project = pyproject()
    runtime = as_map(Dep.parse(r) for r in project["dependencies"])
    extras = {
        canonical(k): as_map(Dep.parse(r) for r in v) for k, v in project.get("optional-dependencies", {}).items()
    }
    return runtime, extras


def makefile_no_deps_pin() -> Dep:
    """The requirement the Makefile installs with ``pip install ... --no-deps "<req>"``."""
    for line in MAKEFILE.read_text().splitlines():
        if "pip install" in line and "--no-deps" in line and not line.lstrip().startswith("#"):
            for token in shlex.split(line):
                try:
                    dep = Dep.parse(token)
                except InvalidRequirement:  # $(BIN)/pip, paths
                    continue
                if dep.name == EXTRA_RUNTIME:
                    return dep
    raise AssertionError(f"Makefile installs no {EXTRA_RUNTIME} with --no-deps")


def dockerfile_stages(text: str) -> dict[str, list[str]]:
    """Instructions per named stage, continuation lines joined and comment lines dropped (as Docker does)."""
    stages: dict[str, list[str]] = {}
    current: list[str] | None = None
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buffer):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        instruction = (buffer + line).strip()
        buffer = ""
        if not instruction:
            continue
        match = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", instruction, flags=re.IGNORECASE)
        if match:
            current = stages.setdefault(match.group(1) or f"stage{len(stages)}", [])
        if current is not None:
            current.append(instruction)
    return stages


@dataclass
class PipInstall:
    requirements: list[str]
    no_deps: bool
    editable: list[str]
    constraints: list[str]


_OPTIONS_WITH_VALUE = {
    "-c", "--constraint", "-r", "--requirement", "-i", "--index-url", "--extra-index-url", "-f", "--find-links",
    "--target", "-t", "--prefix", "--root", "--platform", "--python-version", "--only-binary", "--no-binary",
}


def pip_installs(instructions: list[str]) -> list[PipInstall]:
    """Every ``pip install`` command inside the RUN instructions (``&&``/``;``-separated commands included)."""
    found = []
    for instruction in instructions:
        if not instruction.upper().startswith("RUN "):
            continue
        tokens = shlex.split(instruction[4:])
        commands, command = [], []
        for token in tokens:
            if token in ("&&", ";", "||"):
                commands.append(command)
                command = []
            else:
                command.append(token)
        commands.append(command)
        for cmd in commands:
            for i in range(len(cmd) - 1):
                if cmd[i] in ("pip", "pip3") or (cmd[i] == "-m" and cmd[i + 1] == "pip"):
                    start = i + 1 if cmd[i] in ("pip", "pip3") else i + 2
                    if start < len(cmd) and cmd[start] == "install":
                        found.append(_parse_pip_args(cmd[start + 1 :]))
                    break
    return found


def _parse_pip_args(args: list[str]) -> PipInstall:
    reqs, editable, constraints, no_deps = [], [], [], False
    it = iter(args)
    for arg in it:
        if arg in ("-e", "--editable"):
            editable.append(next(it))
        elif arg in ("-c", "--constraint"):
            constraints.append(next(it))
        elif arg == "--no-deps":
            no_deps = True
        elif arg in _OPTIONS_WITH_VALUE:
            next(it)
        elif arg.startswith("-"):
            continue
        else:
            reqs.append(arg)
    return PipInstall(reqs, no_deps, editable, constraints)


def docker_installs() -> list[PipInstall]:
    stages = dockerfile_stages(DOCKERFILE.read_text())
    assert TRAINER_STAGE in stages, f"docker/Dockerfile has no stage named {TRAINER_STAGE!r}: {sorted(stages)}"
    return pip_installs(stages[TRAINER_STAGE])


def environment() -> dict:
    return yaml.safe_load(ENVIRONMENT.read_text())


def environment_parts() -> tuple[list[str], list[str]]:
    """(conda entries, pip entries) of environment.yml."""
    conda, pip = [], []
    for entry in environment()["dependencies"]:
        if isinstance(entry, dict):
            pip.extend(entry.get("pip", []))
        else:
            conda.append(str(entry))
    return conda, pip


# ---------------------------------------------------------------------------------------------------- tests


def test_docker_trainer_installs_pyproject_dependencies():
    runtime, extras = pyproject_sets()
    expected: dict[str, Dep] = {}
    for name, dep in runtime.items():
        if name in DOCKER_RULES["provided_by_base_image"]:
            continue
        if name in DOCKER_RULES["substitutes"]:
            sub = DOCKER_RULES["substitutes"][name]
            expected[sub] = Dep(sub, dep.extras, dep.specifier)
        else:
            expected[name] = dep
    for extra, deps in extras.items():
        if extra not in DOCKER_RULES["extras_not_installed"]:
            expected.update(deps)

    installs = docker_installs()
    problems: list[str] = []
    where = "docker/Dockerfile (trainer)"
    with_deps = as_map(
        (Dep.parse(r) for inst in installs if not inst.no_deps for r in inst.requirements), problems, where
    )
    problems += differences(expected, with_deps, where)
    for name in DOCKER_RULES["provided_by_base_image"]:
        if name in with_deps:
            problems.append(f"docker/Dockerfile (trainer): installs {with_deps[name]}, which the base image provides")
    assert not problems, "dependency sets differ:\n  " + "\n  ".join(problems)


def test_docker_installs_open_clip_without_deps_at_the_makefile_pin():
    no_deps = as_map(Dep.parse(r) for inst in docker_installs() if inst.no_deps for r in inst.requirements)
    assert no_deps == {EXTRA_RUNTIME: makefile_no_deps_pin()}, (
        f"docker/Dockerfile --no-deps installs {sorted(map(str, no_deps.values()))}, "
        f"the Makefile {makefile_no_deps_pin()}"
    )


def test_docker_installs_the_project_itself_without_its_declared_dependencies():
    # With its dependencies pip would add faiss-cpu beside faiss-gpu-cu12 (both provide the `faiss` module).
    project = [inst for inst in docker_installs() if inst.editable or "." in inst.requirements]
    assert project, "docker/Dockerfile never installs the project (pip install --no-deps -e .)"
    assert all(inst.no_deps for inst in project), "the project must be installed with --no-deps in docker/Dockerfile"
    assert any(inst.editable == ["."] for inst in project), "install the project editable so conf/ is found beside it"


def test_docker_resolves_against_the_base_image_torch():
    # A dependency install without the constraint could replace the base image's CUDA torch with a PyPI build.
    stages = dockerfile_stages(DOCKERFILE.read_text())
    written = re.findall(r"torch\.__version__.*?>\s*(\S+)", " ".join(stages[TRAINER_STAGE]))
    assert written, "docker/Dockerfile writes no torch constraint file from the base image's torch.__version__"
    resolving = [inst for inst in docker_installs() if not inst.no_deps]
    assert resolving
    for inst in resolving:
        assert written[0] in inst.constraints, f"pip install {inst.requirements} without -c {written[0]}"


def test_mlflow_server_image_matches_the_client_range():
    stages = dockerfile_stages(DOCKERFILE.read_text())
    assert MLFLOW_STAGE in stages, f"docker/Dockerfile has no stage named {MLFLOW_STAGE!r}"
    args = dict(
        re.match(r"ARG\s+(\w+)=(\S+)", i).groups() for i in stages[MLFLOW_STAGE] if re.match(r"ARG\s+\w+=", i)
    )
    runtime, _ = pyproject_sets()
    assert runtime["mlflow"].specifier.contains(args["MLFLOW_VERSION"]), (
        f"server mlflow=={args['MLFLOW_VERSION']} outside the client's {runtime['mlflow'].specifier}"
    )
    run = " ".join(i for i in stages[MLFLOW_STAGE] if i.upper().startswith("RUN "))
    assert "psycopg2-binary==${PSYCOPG2_VERSION}" in run  # postgresql+psycopg2:// backend store


def test_environment_yml_matches_pyproject():
    runtime, extras = pyproject_sets()
    expected = dict(runtime)
    for deps in extras.values():
        for name, dep in deps.items():
            if name in expected and expected[name] != dep:
                raise AssertionError(f"pyproject.toml: {name} differs between groups: {expected[name]} / {dep}")
            expected[name] = dep
    expected[EXTRA_RUNTIME] = makefile_no_deps_pin()

    conda, pip = environment_parts()
    problems: list[str] = []
    for entry in conda:
        name = canonical(re.split(r"[=<>!~ ]", entry, maxsplit=1)[0])
        if name not in CONDA_RULES["conda_toolchain"]:
            problems.append(f"environment.yml: conda package {entry!r}: Python packages belong under pip: "
                            f"(conda is for {sorted(CONDA_RULES['conda_toolchain'])})")
    reqs = [p for p in pip if not p.startswith("-")]
    where = "environment.yml (pip)"
    problems += differences(expected, as_map((Dep.parse(r) for r in reqs), problems, where), where)
    assert not problems, "dependency sets differ:\n  " + "\n  ".join(problems)


def test_environment_yml_python_and_project():
    conda, pip = environment_parts()
    pythons = [c for c in conda if canonical(re.split(r"[=<>!~ ]", c, maxsplit=1)[0]) == "python"]
    assert len(pythons) == 1, f"environment.yml pins python once, found {pythons}"
    version = re.split(r"=+", pythons[0], maxsplit=1)[1]
    requires = SpecifierSet(pyproject()["requires-python"])
    assert requires.contains(version), f"environment.yml python={version} outside requires-python {requires}"
    assert "-e ." in pip, "environment.yml installs the project itself (pip: -e .)"
    assert environment()["channels"] == ["conda-forge"]


# ------------------------------------------------------------------------- the checker itself catches drift


def test_differences_lists_missing_extra_and_changed_requirements():
    expected = as_map(Dep.parse(r) for r in ["numpy>=1.26", "faiss-cpu>=1.8", "psycopg[binary]>=3.1"])
    actual = as_map(Dep.parse(r) for r in ["NumPy>=1.26", "psycopg>=3.1", "Extra_Pkg==1"])
    assert differences(expected, actual, "x") == [
        "x: missing faiss-cpu>=1.8",
        "x: not in pyproject.toml (nor an allowed difference): extra-pkg==1",
        "x: psycopg>=3.1 but expected psycopg[binary]>=3.1",
    ]
    # Specifier order and name spelling do not matter (PEP 503, PEP 440).
    assert differences(as_map([Dep.parse("optuna>=4.0,<6")]), as_map([Dep.parse("Optuna<6,>=4.0")]), "x") == []


def test_pip_install_parser_reads_continuations_and_chained_commands():
    text = (
        "FROM base AS trainer\n"
        "# a comment\n"
        "RUN python3 -c \"print(1)\" > /c.txt \\\n"
        "    && python3 -m pip install --no-cache-dir -c /c.txt \\\n"
        "      \"numpy>=1.26\" \\\n"
        "      # a comment inside the continuation\n"
        "      scipy \\\n"
        "    && pip install --no-deps \"open-clip-torch==3.3.0\"\n"
        "RUN pip install --no-deps -e .\n"
    )
    installs = pip_installs(dockerfile_stages(text)["trainer"])
    assert [(i.requirements, i.no_deps, i.editable, i.constraints) for i in installs] == [
        (["numpy>=1.26", "scipy"], False, [], ["/c.txt"]),
        (["open-clip-torch==3.3.0"], True, [], []),
        ([], True, ["."], []),
    ]
