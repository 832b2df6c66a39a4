"""The scenarios of issue 3, at full size and at ``--quick`` size."""

from __future__ import annotations

from dataclasses import dataclass

from bench.tracking import Conversation, Profile

FAST = Profile(first_token_s=0.0, token_s=0.0, tokens=20)
STREAMING = Profile(first_token_s=0.3, token_s=0.02, tokens=200)
BURST = Profile(first_token_s=0.5, token_s=0.02, tokens=20)

PRIVATE_BASE = 1_000_000
WARM_UP_BASE = 900_000
MEMBER_BASE = 2_000_000
# "-100..." makes the fake call the chat a supergroup, as nearly every group is today.
GROUP_BASE = -1_001_000_000_000
WARM_UP_USERS = 5


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    about: str
    private_users: int = 0
    private_turns: int = 0
    private_profile: Profile = FAST
    groups: int = 0
    members: int = 0
    group_turns: int = 0
    group_profile: Profile = STREAMING
    limits: bool = False

    def conversations(self) -> list[tuple[Conversation, int, Profile]]:
        """Every measured conversation with its number of turns and model profile."""
        out = [
            (
                Conversation(PRIVATE_BASE + i, PRIVATE_BASE + i, True),
                self.private_turns,
                self.private_profile,
            )
            for i in range(self.private_users)
        ]
        for g in range(self.groups):
            for m in range(self.members):
                conv = Conversation(GROUP_BASE - g, MEMBER_BASE + g * 10 + m, True, f"Member{m}")
                out.append((conv, self.group_turns, self.group_profile))
        return out

    @property
    def turns(self) -> int:
        return self.private_users * self.private_turns + (
            self.groups * self.members * self.group_turns
        )


def warm_up_conversations() -> list[Conversation]:
    return [Conversation(WARM_UP_BASE + i, WARM_UP_BASE + i, False) for i in range(WARM_UP_USERS)]


def _profile_text(p: Profile) -> str:
    first, each = p.first_token_s * 1000, p.token_s * 1000
    return f"first token {first:.0f} ms, {each:.0f} ms/token, {p.tokens} tokens"


def _build(quick: bool) -> dict[str, Scenario]:
    def n(full: int, small: int) -> int:
        return small if quick else full

    streaming_users, streaming_turns = n(50, 10), n(2, 1)
    groups, group_turns = n(50, 10), n(2, 1)
    scenarios = [
        Scenario(
            "overhead",
            f"{n(200, 50)} users x {n(5, 3)} messages at once; {_profile_text(FAST)}",
            private_users=n(200, 50),
            private_turns=n(5, 3),
            private_profile=FAST,
        ),
        Scenario(
            "streaming",
            f"{streaming_users} users x {streaming_turns} messages; {_profile_text(STREAMING)}",
            private_users=streaming_users,
            private_turns=streaming_turns,
            private_profile=STREAMING,
        ),
        Scenario(
            "burst",
            f"{n(1000, 200)} users x 1 message at once; {_profile_text(BURST)}",
            private_users=n(1000, 200),
            private_turns=1,
            private_profile=BURST,
        ),
        Scenario(
            "groups",
            f"{groups} groups x 4 members x {group_turns} @mentions; {_profile_text(STREAMING)}",
            groups=groups,
            members=4,
            group_turns=group_turns,
        ),
        Scenario(
            "limits",
            f"streaming + groups at once under Telegram-like flood limits "
            f"({streaming_users} private users, {groups} groups x 4 members)",
            private_users=streaming_users,
            private_turns=streaming_turns,
            private_profile=STREAMING,
            groups=groups,
            members=4,
            group_turns=group_turns,
            limits=True,
        ),
    ]
    return {s.name: s for s in scenarios}


def scenarios(*, quick: bool = False) -> dict[str, Scenario]:
    return _build(quick)
