"""The application's data: managers, their players and training recommendations.

Player rows mirror what the CHPP API reports (skills on Hattrick's 0-20 scale, form and stamina
on 1-8); `position` and `notes` belong to the manager and survive every sync.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

# The skills a sync copies from CHPP, in the order Hattrick lists them.
SKILLS = ("keeper", "defending", "playmaking", "winger", "passing", "scoring", "set_pieces")
SYNCED_FIELDS = (
    "first_name",
    "last_name",
    "age",
    "tsi",
    "form",
    "stamina",
    "injury_weeks",
    *SKILLS,
)


def utcnow() -> dt.datetime:
    """Naive UTC: SQLite keeps no time zone, so none is stored and none is compared."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    team_id: Mapped[int] = mapped_column(Integer)
    # The manager asked not to be counted in usage analytics (active users).
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)


class Player(Base):
    __tablename__ = "players"

    id: Mapped[int] = mapped_column(primary_key=True)  # the CHPP player id
    team_id: Mapped[int] = mapped_column(Integer, index=True)
    first_name: Mapped[str] = mapped_column(String(64))
    last_name: Mapped[str] = mapped_column(String(64))
    age: Mapped[int] = mapped_column(Integer)
    tsi: Mapped[int] = mapped_column(Integer)
    form: Mapped[int] = mapped_column(Integer)
    stamina: Mapped[int] = mapped_column(Integer)
    injury_weeks: Mapped[int] = mapped_column(Integer, default=0)
    keeper: Mapped[int] = mapped_column(Integer)
    defending: Mapped[int] = mapped_column(Integer)
    playmaking: Mapped[int] = mapped_column(Integer)
    winger: Mapped[int] = mapped_column(Integer)
    passing: Mapped[int] = mapped_column(Integer)
    scoring: Mapped[int] = mapped_column(Integer)
    set_pieces: Mapped[int] = mapped_column(Integer)
    position: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Recommendation(Base):
    __tablename__ = "recommendations"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(Integer, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    training: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


def make_engine(url: str) -> Engine:
    """An engine for `url`; an in-memory SQLite database is shared by all threads."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        return create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
    return create_engine(url, connect_args=connect_args)


def init_db(engine: Engine) -> sessionmaker:
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)
