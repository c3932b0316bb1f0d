"""Training advice: fitness first, then the weakest line, with young trainees named."""

from dataclasses import dataclass

from examples.teamapp.training import NEEDS, line_strength, recommend


@dataclass
class P:
    id: int
    age: int = 20
    stamina: int = 7
    form: int = 6
    injury_weeks: int = 0
    keeper: int = 5
    defending: int = 5
    playmaking: int = 5
    winger: int = 5
    passing: int = 5
    scoring: int = 5
    set_pieces: int = 5


def squad(**overrides):
    return [P(id=i, **overrides) for i in range(16)]


def test_no_players_no_advice():
    assert recommend([]) is None


def test_low_stamina_asks_for_fitness_with_the_least_fit_first():
    players = squad(stamina=4)
    players[3].stamina = 1
    advice = recommend(players)
    assert advice.training == "stamina"
    assert advice.trainees[0] == 3


def test_three_injuries_ask_for_fitness():
    players = squad()
    for p in players[:3]:
        p.injury_weeks = 2
    assert recommend(players).training == "stamina"


def test_weakest_line_is_trained_and_young_talents_named():
    players = squad()
    for p in players:
        p.scoring = 2
    players[5].scoring, players[5].age = 6, 18
    players[6].scoring, players[6].age = 3, 29  # too old to be a trainee
    advice = recommend(players)
    assert advice.training == "scoring"
    assert advice.trainees[0] == 5
    assert 6 not in advice.trainees


def test_line_strength_ignores_injured_and_pads_missing_players():
    players = [P(id=1, keeper=10, injury_weeks=1), P(id=2, keeper=4)]
    assert line_strength(players, "keeper") == 4
    assert line_strength(players[:1], "defending") == 0
    assert set(NEEDS) >= {"keeper", "defending", "scoring"}
