"""Training recommendations: which skill the squad should train this week, and who benefits.

Hattrick trains one skill per week for the whole team, and young players gain most. The rule of
thumb here: first keep the squad fit (stamina when form and fitness are low or several players
are injured), otherwise train the skill where the best line-up is weakest relative to how many
players a 4-4-2 needs in it, and name the young players who would gain most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# How many starters a 4-4-2 line-up needs strong in each skill.
NEEDS = {
    "keeper": 1,
    "defending": 4,
    "playmaking": 3,
    "winger": 2,
    "passing": 2,
    "scoring": 2,
    "set_pieces": 1,
}
YOUNG = 24


class PlayerLike(Protocol):
    id: int
    age: int
    stamina: int
    form: int
    injury_weeks: int


@dataclass(frozen=True)
class Advice:
    training: str
    reason: str
    trainees: tuple[int, ...]


def line_strength(players: Sequence[PlayerLike], skill: str) -> float:
    """Mean skill of the best `NEEDS[skill]` fit players: what a match line-up would field."""
    need = NEEDS[skill]
    levels = sorted((getattr(p, skill) for p in players if not p.injury_weeks), reverse=True)
    best = levels[:need] + [0] * max(0, need - len(levels))
    return sum(best) / need


def recommend(players: Sequence[PlayerLike]) -> Advice | None:
    """The advice for this squad, or None when there is no squad to advise on."""
    if not players:
        return None
    injured = sum(1 for p in players if p.injury_weeks)
    stamina = sum(p.stamina for p in players) / len(players)
    if injured >= 3 or stamina < 4.5:
        return Advice(
            "stamina",
            f"{injured} injured and mean stamina {stamina:.1f}: rebuild fitness first",
            tuple(p.id for p in sorted(players, key=lambda p: p.stamina)[:5]),
        )
    strengths = {skill: line_strength(players, skill) for skill in NEEDS}
    weakest = min(strengths, key=lambda s: (strengths[s], s))
    young = sorted(
        (p for p in players if p.age <= YOUNG and not p.injury_weeks),
        key=lambda p: (-getattr(p, weakest), p.age, p.id),
    )
    trainees = tuple(p.id for p in young[:3])
    return Advice(
        weakest,
        f"weakest line: {weakest} at {strengths[weakest]:.1f}; "
        f"{len(trainees)} young player(s) to develop",
        trainees,
    )
