"""The one error every scoring precondition raises."""


class ScoringError(ValueError):
    """An input broke a precondition of a score; the message names the rule and the input."""
