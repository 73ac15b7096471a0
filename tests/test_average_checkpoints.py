"""scripts/average_checkpoints.py: the mean of training checkpoints, strict about their tensors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from scriptkit import load_script

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "average_checkpoints.py"


def _script():
    return load_script("average_checkpoints")


def test_mean_of_float_tensors_and_last_integer_buffer() -> None:
    avg = _script().average_states(
        [
            {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)},
            {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(7)},
        ],
        ["a", "b"],
    )
    assert torch.equal(avg["w"], torch.tensor([2.0, 4.0]))
    assert int(avg["n"]) == 7


@pytest.mark.parametrize(
    ("other", "needle"),
    [
        ({"w": torch.zeros(2), "x": torch.zeros(1)}, "unexpected ['x']"),
        ({"w": torch.zeros(3)}, "w has shape (3,)"),
    ],
)
def test_mismatched_checkpoints_name_the_tensor(other: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=r"^first: .*") as err:
        _script().average_states([other, {"w": torch.zeros(2)}], ["first", "second"])
    assert needle in str(err.value)


def test_cli_writes_the_mean_and_keeps_the_last_metadata(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.pt"
        torch.save(
            {"model": {"w": torch.full((2,), float(i))}, "opt": {}, "step": i * 10, "config": {"a": i}}, p
        )
        paths.append(str(p))
    out = tmp_path / "avg.pt"
    subprocess.run([sys.executable, str(SCRIPT), *paths, "--last", "2", "--out", str(out)], check=True)
    ck = torch.load(out, weights_only=False)
    assert torch.equal(ck["model"]["w"], torch.full((2,), 1.5))
    assert ck["step"] == 20 and ck["config"] == {"a": 2} and "opt" not in ck
