"""Checks of task fields that several tasks share; each failure is one line naming the field and
what it allows."""


def check_count_range(low_name: str, low: int, high_name: str, high: int) -> None:
  """A task's range low..high of counts (digits, statements): low >= 1 and high >= low."""
  if low < 1:
    raise ValueError(f"task.{low_name}: {low}; allowed: >= 1")
  if high < low:
    raise ValueError(f"task.{high_name}: {high}; allowed: >= {low_name}={low}")
