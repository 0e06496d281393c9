"""The launcher: command lines, streaming and failure of the subprocess, and the ZeRO-3 accelerate config.

DeepSpeed itself is not installed on CPU machines, so the config is checked as far as accelerate reads it without
launching: its config loader, `accelerate launch`'s own argument parser and validation, and the environment its
DeepSpeed launcher would hand the workers.
"""

import sys
import time
from pathlib import Path

import pytest

from lgt.training import launch
from lgt.training.settings import DpoCheckpointSettings, SftCheckpointSettings

ZERO3 = Path(__file__).resolve().parents[2] / "recipes/accelerate/zero3.yaml"


def test_python_command():
    settings = SftCheckpointSettings()
    assert launch.command("/jobs/j.json", settings, python="/venv/bin/python") == [
        "/venv/bin/python",
        "-m",
        "lgt.training.train",
        "/jobs/j.json",
    ]


def test_accelerate_command_for_zero3():
    settings = DpoCheckpointSettings(launcher="accelerate", accelerate_config=ZERO3, num_processes=8)
    expected = [
        "/venv/bin/python",
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ZERO3),
        "--num_processes",
        "8",
        "-m",
        "lgt.training.train",
        "/jobs/j.json",
    ]
    assert launch.command(Path("/jobs/j.json"), settings, python="/venv/bin/python") == expected
    # the job file's settings (JSON mode) give the same command
    assert launch.command("/jobs/j.json", settings.model_dump(mode="json"), python="/venv/bin/python") == expected


def test_zero3_config_is_read_by_accelerate_as_deepspeed_stage_3():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    config = load_config_from_file(str(ZERO3))
    assert config.distributed_type == "DEEPSPEED" and config.mixed_precision == "bf16"
    ds = config.deepspeed_config
    assert ds["zero_stage"] == 3 and ds["zero3_init_flag"] is True and ds["zero3_save_16bit_model"] is True
    assert ds["offload_optimizer_device"] == ds["offload_param_device"] == "none"

    settings = SftCheckpointSettings(launcher="accelerate", accelerate_config=ZERO3, num_processes=4)
    cmd = launch.command("/jobs/j.json", settings, python=sys.executable)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    args = launch_command_parser().parse_args(cmd[3:])  # what `accelerate launch` parses from our command line
    assert (
        args.module and args.training_script == "lgt.training.train" and args.training_script_args == ["/jobs/j.json"]
    )
    args, defaults, _ = _validate_launch_command(args)
    assert args.use_deepspeed and args.num_processes == 4  # the command line overrides the file's num_processes
    # what launch_command does before handing over to the DeepSpeed launcher
    args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
    _, env = prepare_deepspeed_cmd_env(args)
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true" and env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == "3"
    assert env["ACCELERATE_DEEPSPEED_ZERO3_INIT"] == "true" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    assert env["ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL"] == "true"


def test_run_streams_lines_and_passes_env():
    lines: list[str] = []
    code = "import os\nfor i in range(3): print('step', i)\nprint(os.environ['LGT_X'])"
    launch.run([sys.executable, "-c", code], lines.append, env={"LGT_X": "seen"})
    assert lines == ["step 0", "step 1", "step 2", "seen"]


def test_run_failure_raises_with_the_tail():
    lines: list[str] = []
    code = "import sys\nfor i in range(100): print('line', i)\nprint('boom', file=sys.stderr)\nsys.exit(3)"
    with pytest.raises(RuntimeError) as err:
        launch.run([sys.executable, "-c", code], lines.append)
    msg = str(err.value)
    assert "exited with status 3" in msg and msg.endswith("boom")
    tail = msg.split("--- last output ---\n")[1].splitlines()
    assert tail == [f"line {i}" for i in range(61, 100)] + ["boom"]  # the last 40 lines, stderr included
    assert len(lines) == 101


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def test_interrupt_stops_the_whole_process_group():
    """A launcher's workers are its children: interrupting the parent must stop them too."""
    code = (
        "import subprocess, sys, time\n"
        "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(w.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    pids: list[int] = []

    def log(line: str) -> None:
        pids.append(int(line))
        raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        launch.run([sys.executable, "-c", code], log)
    worker = pids[0]
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(worker)
    assert time.monotonic() - start < 30  # stopped, not waited out
