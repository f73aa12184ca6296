"""``chaosdrill build-images``: build the docker backend's harness image (the venue simulator and the fault
proxy) from the installed package, no repository script needed, and optionally a target file's own image
(its ``docker.build`` section).

The Dockerfile and the contract's ``specs/`` come with the package (package data); the build context is
made of wheels built on this machine (the plugin, ``--wheel`` extras such as a service to put in the same
image, and every dependency), so ``docker build`` itself needs no registry beyond the base image
(``--base-image``, which must already be local or pullable and have this interpreter's Python version).
``--dry-run`` prints the plan, runs nothing and needs no engine.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

DISTRIBUTION = "pytest-chaosdrill"
DEFAULT_TAG = "chaosdrill/target:latest"
#: Stands for the wheels in project/ (known only once they are built).
EACH_WHEEL = "<each wheel in project/>"


@dataclass
class Plan:
    """What ``build-images`` will do, step by step (each a command line or a copy), in order."""

    tag: str
    base_image: str
    python_version: str
    context: Path
    dockerfile: Path
    steps: list[tuple[str, list[str] | None]] = field(default_factory=list)  # (what, argv or None for a copy)
    wheels: list[str] = field(default_factory=list)                          # ready wheels copied into project/
    target_build: tuple[Path, Path, str] | None = None                      # (context, dockerfile, tag)

    def lines(self) -> list[str]:
        out = [f"harness image {self.tag} (venue simulator + fault proxy) from {self.base_image} "
               f"(Python {self.python_version})", f"build context: {self.context}"]
        for n, (what, argv) in enumerate(self.steps, 1):
            out.append(f"  {n}. {what}" + (f": {shlex.join(argv)}" if argv else ""))
        if self.target_build is not None:
            ctx, dockerfile, tag = self.target_build
            out.append(f"target image {tag}: docker build -f {dockerfile} {ctx} (the target file's docker.build)")
        return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", default=os.environ.get("CHAOSDRILL_IMAGE") or DEFAULT_TAG,
                        help="tag of the harness image (default: $CHAOSDRILL_IMAGE or %(default)s, the name the "
                             "docker backend runs)")
    version = "%d.%d" % sys.version_info[:2]
    parser.add_argument("--base-image", default=f"python:{version}-slim",
                        help="base image, local or pullable, with Python %s (the wheels are built for this "
                             "interpreter; default: %%(default)s)" % version)
    parser.add_argument("--wheel", action="append", default=[], metavar="PATH",
                        help="a wheel or a project folder to install in the image too (e.g. your service, which "
                             "a target file's docker section can then run from this image); repeatable")
    parser.add_argument("--source", default=None, metavar="PATH",
                        help="build the plugin's wheel from this source folder or take this wheel (default: the "
                             "installed package's source folder when it was installed from one, else the "
                             "package index's pytest-chaosdrill of the installed version)")
    parser.add_argument("--find-links", action="append", default=[], metavar="DIR",
                        help="extra wheel folders for pip (offline builds); repeatable")
    parser.add_argument("--target", default=None, metavar="FILE",
                        help="also build the target file's own image (its docker.build section)")
    parser.add_argument("--context-dir", default=None, metavar="DIR",
                        help="where to assemble the build context (default: a temporary folder, removed after)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; run nothing (needs no engine)")


def _source(args: argparse.Namespace) -> str | None:
    """Where the plugin's own wheel comes from: a path, or None for the package index."""
    if args.source:
        return str(Path(args.source).resolve())
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        text = distribution(DISTRIBUTION).read_text("direct_url.json")
    except PackageNotFoundError:
        return None
    url = (json.loads(text) if text else {}).get("url", "")
    if url.startswith("file://") and Path(url[7:]).is_dir():
        return url[7:]
    return None


def make_plan(args: argparse.Namespace, context: Path) -> Plan:
    """The steps, from the arguments and the installed package, with the build context assembled in
    ``context`` (raises ``ValueError`` naming a bad input)."""
    from .. import __version__
    from ..resources import data_dir

    docker_dir = data_dir("docker")
    dockerfile = docker_dir / "Dockerfile"
    if not dockerfile.is_file():
        raise ValueError(f"{dockerfile}: the packaged Dockerfile is missing; reinstall pytest-chaosdrill")
    py = sys.executable
    links = [a for d in args.find_links for a in ("--find-links", str(Path(d).resolve()))]
    source = _source(args)
    project = context / "project"
    plan = Plan(args.tag, args.base_image, "%d.%d" % sys.version_info[:2], context, dockerfile)
    if source and source.endswith(".whl"):
        plan.steps.append((f"plugin wheel {source}", None))
        plan.wheels.append(source)
    elif source:
        plan.steps.append(("plugin wheel from its source", [py, "-m", "pip", "wheel", "-q", "--no-deps", *links,
                                                             "--wheel-dir", str(project), source]))
    else:
        plan.steps.append((f"plugin wheel {DISTRIBUTION}=={__version__} from the package index",
                           [py, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", *links,
                            "--dest", str(project), f"{DISTRIBUTION}=={__version__}"]))
    for extra in args.wheel:
        path = Path(extra).resolve()
        if not path.exists():
            raise ValueError(f"--wheel {extra}: no such file or folder")
        if path.suffix == ".whl":
            plan.steps.append((f"extra wheel {path}", None))
            plan.wheels.append(str(path))
        else:
            plan.steps.append((f"extra wheel from {path}", [py, "-m", "pip", "wheel", "-q", "--no-deps", *links,
                                                            "--wheel-dir", str(project), str(path)]))
    plan.steps.append(("every dependency as a wheel (deps/)",
                       [py, "-m", "pip", "wheel", "-q", *links, "--find-links", str(project),
                        "--wheel-dir", str(context / "deps"), EACH_WHEEL]))
    plan.steps.append((f"the contract's specs/ from {data_dir('specs')}", None))
    plan.steps.append(("docker build (legacy builder, no registry but the base image)",
                       ["docker", "build", "--force-rm", "-f", str(dockerfile),
                        "--build-arg", f"BASE_IMAGE={args.base_image}",
                        "--build-arg", f"PYTHON_VERSION={plan.python_version}",
                        "--build-arg", f"GIT_COMMIT={os.environ.get('GIT_COMMIT', f'pytest-chaosdrill=={__version__}')}",
                        "--build-arg", f"BUILD_ID={os.environ.get('BUILD_ID') or 'local-' + datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}",
                        "--build-arg", f"IMAGE_TAG={args.tag}", "-t", args.tag, str(context)]))
    if args.target:
        from ..backends.docker import DockerSpec
        from ..target import load_target

        config = load_target(Path(args.target))  # TargetConfigError: the file and the field, one line
        spec = DockerSpec.from_config(config)
        if spec.build_context is None or spec.dockerfile is None:
            raise ValueError(f"{args.target}: field 'docker.build': not given, nothing to build (the image "
                             f"{spec.image} is pulled or must be local)")
        plan.target_build = (spec.build_context, spec.dockerfile, spec.build_tag(config.name))
    return plan


def execute(plan: Plan) -> str:
    """Run the plan; returns the harness image's id. Raises ``RuntimeError`` with the failing step's output."""
    from ..backends.docker_engine import DockerEngine, engine_available
    from ..resources import data_dir

    ok, reason = engine_available()
    if not ok:
        raise RuntimeError(reason)
    context = plan.context
    shutil.rmtree(context, ignore_errors=True)
    project, deps = context / "project", context / "deps"
    project.mkdir(parents=True)
    deps.mkdir()
    for wheel in plan.wheels:
        shutil.copy2(wheel, project)
    engine = DockerEngine("build-images", handle_signals=False)
    for what, argv in plan.steps:
        if argv is None:
            continue
        if argv[0] == "docker":
            for whl in sorted(deps.glob("*.whl")):  # pip wheel copies the project's own wheels too: once, in project/
                if (project / whl.name).exists():
                    whl.unlink()
            shutil.copytree(data_dir("specs"), context / "specs")
            _step(what, [engine.docker, *argv[1:]], env={**os.environ, "DOCKER_BUILDKIT": "0"})
        else:
            if argv[-1] == EACH_WHEEL:
                argv = argv[:-1] + sorted(map(str, project.glob("*.whl")))
            _step(what, argv)
    image_id = str(engine.image_info(plan.tag)["Id"])
    if plan.target_build is not None:
        ctx, dockerfile, tag = plan.target_build
        print(f"chaosdrill build-images: target image {tag} ...", flush=True)
        engine.build_image(ctx, tag, dockerfile=dockerfile)
    return image_id


def _step(what: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    print(f"chaosdrill build-images: {what} ...", flush=True)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {shlex.join(argv)}\n{tail}")


def run(args: argparse.Namespace) -> int:
    from ..errors import TargetConfigError

    temporary = not args.context_dir and not args.dry_run
    context = (Path(args.context_dir).resolve() if args.context_dir else
               Path(tempfile.mkdtemp(prefix="chaosdrill-build-")) if temporary else
               Path(tempfile.gettempdir()) / "chaosdrill-build-XXXX")
    try:
        try:
            plan = make_plan(args, context)
        except (ValueError, TargetConfigError) as exc:
            print(f"chaosdrill build-images: {exc}", file=sys.stderr)
            return 2
        for line in plan.lines():
            print(line)
        if args.dry_run:
            print("(dry run: nothing was built)")
            return 0
        try:
            image_id = execute(plan)
        except (RuntimeError, OSError) as exc:
            print(f"chaosdrill build-images: {exc}", file=sys.stderr)
            return 1
    finally:
        if temporary:
            shutil.rmtree(context, ignore_errors=True)
    print(f"built {plan.tag}: {image_id}" + (f"; target image {plan.target_build[2]}" if plan.target_build else ""))
    print(f"use it: CHAOSDRILL_IMAGE={plan.tag} pytest --chaosdrill-backend=docker ..." if plan.tag != DEFAULT_TAG
          else "use it: pytest --chaosdrill-backend=docker ...")
    return 0
