"""`hatch run hub [serve] [--host H --port P --store DIR]`, and the operator's commands:

hatch run hub publish DIR --id opus-en-zh --kind nmt --version 1 --engine transformers \
    --src en --tgt zh
hatch run hub list
hatch run hub verify              # recheck every stored file's SHA256

The node's embedded default models are published from the node package (it builds them):
`hatch run node models publish-bundled --hub URL --token T`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lingua_protocol import HUB_ENGINES, HUB_MODEL_KINDS, HubModelVersion

from ._catalog import Catalog, HubError
from ._settings import HubSettings


def _settings(args: argparse.Namespace) -> HubSettings:
    overrides = {k: getattr(args, k) for k in ("host", "port", "store") if getattr(args, k, None)}
    return HubSettings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    from ._app import create_app
    from ._server import build_server

    settings = _settings(args)
    server = build_server(create_app(settings), settings, args.log_level)
    print(
        f"lingua hub on http://{settings.host}:{settings.port} (store {settings.store.resolve()})",
        flush=True,
    )
    server.run()
    return 0


def _print(record: HubModelVersion) -> None:
    pair = f"{record.src_lang}->{record.tgt_lang}" if record.src_lang else ""
    langs = ",".join(record.languages[:8]) + ("..." if len(record.languages) > 8 else "")
    print(
        f"{record.model_id}@{record.version}  {record.kind}  {record.engine}  "
        f"{pair or langs}  {record.total_size:,} bytes  {len(record.files)} files"
    )


def cmd_publish(args: argparse.Namespace) -> int:
    meta = {
        "model_id": args.id,
        "version": args.version,
        "kind": args.kind,
        "engine": args.engine,
        "src_lang": args.src,
        "tgt_lang": args.tgt,
        "dialect": args.dialect,
        "languages": args.langs.split(",") if args.langs else [],
        "license": args.license,
    }
    folder = Path(args.dir)
    if not folder.is_dir():
        print(f"{folder} is not a folder", file=sys.stderr)
        return 2
    _print(Catalog(_settings(args).store).publish_dir(folder, meta))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for record in Catalog(_settings(args).store).search(kind=args.kind):
        _print(record)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    catalog = Catalog(_settings(args).store)
    problems = catalog.verify()
    for p in problems:
        print(p)
    n = sum(len(m.files) for m in catalog.search())
    print(f"{n} files checked, {len(problems)} problems")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="lingua-hub", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    commands = {
        "serve": cmd_serve,
        "publish": cmd_publish,
        "list": cmd_list,
        "verify": cmd_verify,
    }
    subs = {name: sub.add_parser(name) for name in commands}
    for p in subs.values():
        p.add_argument("--store", type=Path, help="store folder (default ./hub-store)")
    subs["serve"].add_argument("--host")
    subs["serve"].add_argument("--port", type=int)
    subs["serve"].add_argument("--log-level", default="info")
    pub = subs["publish"]
    pub.add_argument("dir")
    pub.add_argument("--id", required=True)
    pub.add_argument("--version", required=True)
    pub.add_argument("--kind", required=True, choices=HUB_MODEL_KINDS)
    pub.add_argument("--engine", required=True, choices=HUB_ENGINES)
    pub.add_argument("--src")
    pub.add_argument("--tgt")
    pub.add_argument("--langs", help="comma-separated languages (asr, tts, multilingual nmt)")
    pub.add_argument("--dialect")
    pub.add_argument("--license")
    subs["list"].add_argument("--kind")
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["serve", *argv]
    args = parser.parse_args(argv)
    try:
        return commands[args.command](args)
    except HubError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
