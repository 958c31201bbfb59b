"""Poll mode hands parcels over oldest first and stops at the first one not due: the same
parcels, in the same order, as looking at every waiting parcel would give, whatever the
interleaving of scans, replies, abandoned polls and time."""

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.devices.messages import WeightStatus
from edge_agent.sorting.pairing import Pairer
from tests.sorting.test_pairing import MS, make, scan, summary, weight


def every_waiting_parcel(pairer: Pairer, now_ns: int) -> list:
    """The reference: try each waiting parcel, keep the ones not due (window mode's walk)."""
    done, still = [], []
    for pending in pairer._pending:
        parcel = pairer._try_complete(pending, now_ns)
        (still if parcel is None else done).append(parcel or pending)
    pairer._pending = still
    return done


steps = st.lists(
    st.one_of(
        st.tuples(st.just("scan"), st.integers(0, 40)),
        st.tuples(st.just("reply"), st.integers(0, 40),
                  st.sampled_from(["stable", "moving", "no_stable", "overload"])),
        st.tuples(st.just("abandon"), st.integers(0, 40)),
        st.tuples(st.just("wait"), st.integers(0, 900)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_oldest_first_equals_looking_at_every_waiting_parcel(actions):
    fast, reference = make("poll-after-scan"), make("poll-after-scan")
    now_ms, handed_fast, handed_reference = 1000, [], []
    for number, action in enumerate(actions):
        kind, amount = action[0], action[1]
        now_ms += amount if kind == "wait" else 1
        for pairer in (fast, reference):
            if kind == "scan":
                pairer.on_scan(scan(f"B{number}", now_ms))
            elif kind == "reply":
                reply = action[2]
                if reply == "no_stable":  # MT-SICS `S I`: an answer without a weight
                    pairer.on_weight(weight(None, now_ms, stable=False, status=WeightStatus.ERROR))
                elif reply == "overload":
                    pairer.on_weight(weight(None, now_ms, status=WeightStatus.OVERLOAD))
                else:  # a reading in motion is no answer at all
                    pairer.on_weight(weight(1 + amount / 10, now_ms, stable=reply == "stable"))
            elif kind == "abandon":
                pairer.abandon_polls(scanned_before_ns=(now_ms - amount) * MS)
        handed_fast += fast.ready(now_ms * MS)
        handed_reference += every_waiting_parcel(reference, now_ms * MS)
        assert fast.pending_count() == reference.pending_count()
        if fast.pending_count():
            waiting_due = min(reference._due_ns(p)[0] for p in reference._pending)
            assert fast.next_deadline_ns() == waiting_due
        else:
            assert fast.next_deadline_ns() is None
    assert summary(handed_fast) == summary(handed_reference)
