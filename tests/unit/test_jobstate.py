import pytest

from factoryhub.jobstate import KNOWN_STATES, Phase, classify_state

# Every state `squeue --states=all` can print in Slurm 22.05 (squeue(1), JOB STATE CODES).
SLURM_STATES = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "CONFIGURING",
    "COMPLETING",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PENDING",
    "PREEMPTED",
    "RUNNING",
    "RESV_DEL_HOLD",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "REQUEUED",
    "RESIZING",
    "REVOKED",
    "SIGNALING",
    "SPECIAL_EXIT",
    "STAGE_OUT",
    "STOPPED",
    "SUSPENDED",
}


def test_every_slurm_state_is_classified_explicitly():
    assert SLURM_STATES <= KNOWN_STATES
    assert all(classify_state(s) is not Phase.UNKNOWN for s in SLURM_STATES)


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        ("PENDING", Phase.QUEUED),
        ("REQUEUE_HOLD", Phase.QUEUED),
        ("CONFIGURING", Phase.STARTING),
        ("RUNNING", Phase.RUNNING),
        ("SUSPENDED", Phase.PAUSED),
        ("COMPLETING", Phase.ENDING),
        ("TIMEOUT", Phase.ENDED),
        ("NODE_FAIL", Phase.ENDED),
        ("OUT_OF_MEMORY", Phase.ENDED),
        ("CANCELLED by 1001", Phase.ENDED),
        ("running", Phase.RUNNING),
        ("FROBNICATED", Phase.UNKNOWN),
        ("", Phase.UNKNOWN),
    ],
)
def test_phases(state, phase):
    assert classify_state(state) is phase
