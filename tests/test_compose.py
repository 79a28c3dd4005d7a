"""docker-compose.yml, checked structurally (no Docker engine is needed).

The file is read with PyYAML when it is installed; otherwise with the small parser below, which
knows exactly the YAML subset the file is written in (block mappings and sequences, comments,
JSON-style quoted strings and flow sequences, plain scalars). When both are there they must agree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
DURATION = re.compile(r"^\d+(us|ms|s|m|h)$")
SERVICE_KEYS = {
    "image", "command", "entrypoint", "ports", "volumes", "healthcheck", "restart",
    "environment", "container_name", "hostname", "networks", "depends_on", "expose",
}  # fmt: skip
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval"}
_KEY = re.compile(r"^([A-Za-z0-9_.-]+):(?:\s+(.*))?$")


def _scalar(text: str) -> Any:
    if text[:1] in '"[{':
        return json.loads(text)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return {"true": True, "false": False, "null": None, "~": None}.get(text, text)


def parse_yaml_subset(text: str) -> Any:
    """Parses the YAML subset docker-compose.yml is written in; anything else is an error."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError(f"line {number}: tab in indentation")
        lines.append((len(raw) - len(raw.lstrip(" ")), stripped, number))

    def block(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1].startswith("- "):
            items = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                items.append(_scalar(lines[i][1][2:].strip()))
                i += 1
            return items, i
        mapping: dict[str, Any] = {}
        while i < len(lines) and lines[i][0] == indent:
            _, content, number = lines[i]
            match = _KEY.match(content)
            if match is None:
                raise ValueError(f"line {number}: not a 'key: value' line: {content!r}")
            key, rest = match.group(1), match.group(2)
            if key in mapping:
                raise ValueError(f"line {number}: duplicate key {key!r}")
            i += 1
            if rest:
                mapping[key] = _scalar(rest.strip())
            elif i < len(lines) and lines[i][0] > indent:
                mapping[key], i = block(i, lines[i][0])
            else:
                mapping[key] = None
        if i < len(lines) and lines[i][0] > indent:
            raise ValueError(f"line {lines[i][2]}: unexpected indentation")
        return mapping, i

    value, end = block(0, lines[0][0])
    if end != len(lines):
        raise ValueError(f"line {lines[end][2]}: unexpected dedent")
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    parsed = parse_yaml_subset(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(parsed, dict)
    return parsed


@pytest.fixture(scope="module")
def mongo(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]["mongo"]  # README: docker compose exec mongo mongosh mybot


def test_pyyaml_reads_it_the_same() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    text = COMPOSE.read_text(encoding="utf-8")
    assert yaml.safe_load(text) == parse_yaml_subset(text)


def test_top_level_keys(compose: dict[str, Any]) -> None:
    assert set(compose) <= {"name", "services", "volumes", "networks", "configs", "secrets"}
    assert list(compose["services"]) == ["mongo"]


def test_mongo_8_image(mongo: dict[str, Any]) -> None:
    assert set(mongo) <= SERVICE_KEYS
    assert re.fullmatch(r"mongo:8(\.\d+)*", mongo["image"])


def test_single_node_replica_set(mongo: dict[str, Any]) -> None:
    command = mongo["command"]
    assert isinstance(command, list)
    assert all(isinstance(arg, str) for arg in command)
    replica_set = command[command.index("--replSet") + 1]
    assert replica_set == "rs0"
    assert "--bind_ip_all" in command  # reachable through the published port

    script = mongo["healthcheck"]["test"][-1]
    assert "rs.initiate(" in script
    assert f"_id: '{replica_set}'" in script
    # The member's address is what drivers connect to after discovery: it must be reachable
    # from the host, i.e. the published port.
    [(host, port)] = re.findall(r"host: '([\w.-]+):(\d+)'", script)
    assert host == "localhost"
    assert port == "27017"


def test_healthcheck(mongo: dict[str, Any]) -> None:
    check = mongo["healthcheck"]
    assert set(check) <= HEALTHCHECK_KEYS
    test = check["test"]
    assert test[:2] == ["CMD", "mongosh"]
    assert "--eval" in test
    assert "quit(1)" in test[-1]  # unhealthy until the node is the writable primary
    for key in ("interval", "timeout", "start_period"):
        assert DURATION.match(check[key]), key
    assert isinstance(check["retries"], int)
    assert check["retries"] > 0


def test_port_published(mongo: dict[str, Any]) -> None:
    published = []
    for spec in mongo["ports"]:
        parts = str(spec).split(":")
        assert parts[-1] == "27017"
        published.append(parts[-2])
    assert published == ["27017"]


def test_named_volumes(compose: dict[str, Any], mongo: dict[str, Any]) -> None:
    declared = compose["volumes"]
    mounts = dict(reversed(str(spec).split(":")[:2]) for spec in mongo["volumes"])
    assert mounts["/data/db"] in declared  # a named volume, not a host directory
    assert mounts["/data/configdb"] in declared
    assert set(mounts.values()) == set(declared)


def test_no_unescaped_interpolation() -> None:
    # Compose substitutes ${VAR} and $VAR everywhere; a literal dollar must be written $$.
    text = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"(?<!\$)\$(?!\$)", text.replace("$$", ""))


def test_parser_rejects_what_it_does_not_know() -> None:
    with pytest.raises(ValueError):
        parse_yaml_subset("services:\n  mongo: &anchor\n    image mongo\n")
    with pytest.raises(ValueError):
        parse_yaml_subset("a: 1\na: 2\n")
