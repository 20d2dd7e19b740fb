"""Shell environment of a deployment, for the Makefile and for `eval "$(make -s env)"`.

    deploy_env.py endpoint-url --state-dir .local/endpoint
    deploy_env.py exports --target local --state-dir .local/endpoint \
        --outputs .local/deploy/local/outputs.json

The local endpoint records itself in <state-dir>/endpoint.json; Terraform's outputs
are saved by `make deploy` as `terraform output -json`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

LOCAL_REGION = "us-east-1"


class EnvError(Exception):
    """A readable reason why the environment cannot be given."""


def _read_json(path: Path, missing_hint: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EnvError(f"{path} not found: {missing_hint}") from None
    except json.JSONDecodeError as exc:
        raise EnvError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise EnvError(f"{path} does not hold a JSON object")
    return data


def local_endpoint(state_dir: Path) -> dict[str, Any]:
    return _read_json(
        state_dir / "endpoint.json", "the local endpoint is not running (run 'make local-up')"
    )


def deployment_exports(target: str, state_dir: Path, outputs: Path | None) -> dict[str, str]:
    env: dict[str, str] = {}
    if target == "local":
        endpoint = local_endpoint(state_dir)
        env |= {
            "AWS_ENDPOINT_URL": str(endpoint["endpoint_url"]),
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "LOCALCLOUD_CONTROL_URL": str(endpoint["control_url"]),
        }
    if outputs is not None:
        values = _read_json(outputs, f"no deployment for TARGET={target} (run 'make deploy')")
        try:
            env["VIDEO_STATS_TABLE"] = str(values["table_name"]["value"])
        except (KeyError, TypeError):
            raise EnvError(f"{outputs} has no table_name output") from None
        shards = values.get("summary_index_shards", {})
        if isinstance(shards, dict) and "value" in shards:
            env["SUMMARY_INDEX_SHARDS"] = str(shards["value"])
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    url = sub.add_parser("endpoint-url", help="print the local endpoint URL")
    url.add_argument("--state-dir", type=Path, required=True)
    exports = sub.add_parser("exports", help="print export lines for a shell")
    exports.add_argument("--target", choices=["local", "aws"], required=True)
    exports.add_argument("--state-dir", type=Path, required=True)
    exports.add_argument("--outputs", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "endpoint-url":
            print(local_endpoint(args.state_dir)["endpoint_url"])
        else:
            env = deployment_exports(args.target, args.state_dir, args.outputs)
            for name, value in env.items():
                print(f"export {name}={shlex.quote(value)}")
    except EnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
