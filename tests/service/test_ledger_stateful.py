"""Random sequences of grants, stake changes, releases, round resolutions, payouts, burns and replays
(hypothesis, stateful) on SQLite and PostgreSQL: every invariant holds after every step, and every
balance equals what a plain model of the rules predicts.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from ledger_helpers import add_round, held, set_round_state, submit, tokens

from crowdalpha.ledger import BURN, TREASURY, releasing_account, stake_account, wallet_account
from crowdalpha.service import (
    Context,
    ServiceError,
    apply_payout,
    buyback,
    check_ledger,
    complete_releases_for_round,
    create_account,
    create_model,
    grant,
    increase_stake,
    mint_genesis,
    request_release,
)
from crowdalpha.store import RoundState

USERS = 2
amounts = st.integers(min_value=1, max_value=40).map(tokens) | st.integers(min_value=1, max_value=10**9)


@dataclass
class PendingRelease:
    model: int
    due_round: int
    remaining: int


def test_every_invariant_holds_after_every_step(ctx: Context) -> None:
    mint_genesis(ctx)
    machine_numbers = itertools.count()

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.number = next(machine_numbers)
            names = [f"u{self.number}_{i}" for i in range(USERS)]
            self.users = [create_account(ctx, name).account.id for name in names]
            self.models = [create_model(ctx, name, "classic", f"m_{name}").id for name in names]
            self.start = held(ctx)
            self.expected: Counter[str] = Counter()
            self.rounds: dict[int, str] = {}  # round number -> id, unresolved rounds only
            self.active: dict[int, set[int]] = {}  # round number -> models with a submission
            self.releases: list[PendingRelease] = []
            self.history: list[tuple[str, object, object]] = []
            self.steps = itertools.count()

        # -- the plain model ------------------------------------------------------------------------

        def balance(self, name: str) -> int:
            return self.start.get(name, 0) + self.expected[name]

        def move(self, debit: str, credit: str, amount: int) -> None:
            self.expected[debit] -= amount
            self.expected[credit] += amount

        def key(self) -> str:
            return f"m{self.number}/{next(self.steps)}"

        def record(self, key: str, call, outcome: object) -> None:
            self.history.append((key, call, outcome))

        def attempt(self, call) -> object:
            try:
                return call().transaction_id
            except ServiceError as error:
                return error.rule

        # -- rules ---------------------------------------------------------------------------------

        @rule(user=st.integers(0, USERS - 1), amount=amounts)
        def grant_tokens(self, user: int, amount: int) -> None:
            key = self.key()
            call = lambda: grant(ctx, f"u{self.number}_{user}", amount, idempotency_key=key)  # noqa: E731
            outcome = self.attempt(call)
            assert isinstance(outcome, int)
            self.move(TREASURY, wallet_account(self.users[user]), amount)
            self.record(key, call, outcome)

        @rule(user=st.integers(0, USERS - 1), amount=amounts)
        def stake(self, user: int, amount: int) -> None:
            key = self.key()
            model = self.models[user]
            call = lambda: increase_stake(  # noqa: E731
                ctx, f"u{self.number}_{user}", model, amount, idempotency_key=key
            )
            outcome = self.attempt(call)
            wallet = wallet_account(self.users[user])
            if self.balance(wallet) >= amount:
                assert isinstance(outcome, int)
                self.move(wallet, stake_account(model), amount)
            else:
                assert outcome == "insufficient_wallet"
            self.record(key, call, outcome)

        @rule(user=st.integers(0, USERS - 1), amount=st.none() | amounts)
        def release(self, user: int, amount: int | None) -> None:
            key = self.key()
            model = self.models[user]
            call = lambda: request_release(  # noqa: E731
                ctx, f"u{self.number}_{user}", model, amount, idempotency_key=key
            )
            outcome = self.attempt(call)
            stake = self.balance(stake_account(model))
            wanted = stake if amount is None else amount
            if wanted == 0 or wanted > stake:
                assert outcome == ("nothing_to_release" if amount is None else "insufficient_stake")
            else:
                assert isinstance(outcome, int)
                due = [number for number, models in self.active.items() if user in models]
                if due:
                    self.move(stake_account(model), releasing_account(model), wanted)
                    self.releases.append(PendingRelease(user, max(due), wanted))
                else:
                    self.move(stake_account(model), wallet_account(self.users[user]), wanted)
            self.record(key, call, outcome)

        @rule(submitters=st.sets(st.integers(0, USERS - 1)))
        def open_round(self, submitters: set[int]) -> None:
            number = 1000 * (self.number + 1) + len(self.history) + next(self.steps)
            round_id = add_round(ctx, number, RoundState.SCORING)
            for user in submitters:
                submit(ctx, self.models[user], round_id)
            self.rounds[number] = round_id
            self.active[number] = set(submitters)

        @precondition(lambda self: bool(self.rounds))
        @rule(data=st.data())
        def resolve_round(self, data: st.DataObject) -> None:
            number = data.draw(st.sampled_from(sorted(self.rounds)))
            set_round_state(ctx, self.rounds.pop(number), RoundState.RESOLVED)
            del self.active[number]
            completed = complete_releases_for_round(ctx, "classic", number)
            due = [release for release in self.releases if release.due_round == number]
            assert len(completed) == len(due)
            for release in due:
                model = self.models[release.model]
                self.move(
                    releasing_account(model), wallet_account(self.users[release.model]), release.remaining
                )
                self.releases.remove(release)

        @precondition(lambda self: bool(self.rounds))
        @rule(data=st.data(), user=st.integers(0, USERS - 1), amount=st.integers(-40, 40).map(tokens))
        def payout(self, data: st.DataObject, user: int, amount: int) -> None:
            key = self.key()
            round_id = self.rounds[data.draw(st.sampled_from(sorted(self.rounds)))]
            model = self.models[user]
            call = lambda: apply_payout(ctx, model, round_id, amount, key)  # noqa: E731
            outcome = self.attempt(call)
            stake, pending = self.balance(stake_account(model)), self.balance(releasing_account(model))
            if amount >= 0:
                assert isinstance(outcome, int)
                if amount:
                    self.move(TREASURY, stake_account(model), amount)
            elif -amount > stake + pending:
                assert outcome == "insufficient_stake"
            else:
                assert isinstance(outcome, int)
                from_stake = min(-amount, stake)
                self.move(stake_account(model), BURN, from_stake)
                rest = -amount - from_stake
                self.move(releasing_account(model), BURN, rest)
                for release in self.releases:
                    if release.model == user and rest:
                        taken = min(rest, release.remaining)
                        release.remaining -= taken
                        rest -= taken
            self.record(key, call, outcome)

        @rule(amount=amounts)
        def buy_back(self, amount: int) -> None:
            key = self.key()
            call = lambda: buyback(ctx, amount, idempotency_key=key)  # noqa: E731
            outcome = self.attempt(call)
            if self.balance(BURN) >= amount:
                assert isinstance(outcome, int)
                self.move(BURN, TREASURY, amount)
            else:
                assert outcome == "buyback_exceeds_burned"
            self.record(key, call, outcome)

        @precondition(lambda self: bool(self.history))
        @rule(data=st.data())
        def replay(self, data: st.DataObject) -> None:
            _key, call, outcome = data.draw(st.sampled_from(self.history))
            assert self.attempt(call) == outcome

        # -- invariants ----------------------------------------------------------------------------

        @invariant()
        def ledger_is_sound(self) -> None:
            report = check_ledger(ctx)
            assert report.ok, report.breaks
            assert report.totals.circulating + report.totals.burned <= report.totals.cap

        @invariant()
        def balances_match_the_model(self) -> None:
            actual = held(ctx)
            for name in set(self.expected) | {TREASURY, BURN}:
                assert actual.get(name, 0) == self.balance(name), name

    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=10,
            stateful_step_count=14,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
