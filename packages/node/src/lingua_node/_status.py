"""The live status line a volunteer sees: connection, jobs, streams, latencies, pairing code."""

from __future__ import annotations

import statistics

from rich.table import Table

from ._agent import NodeAgent


def render(agent: NodeAgent, scheduler: str) -> Table:
    s, book = agent.stats, agent.book
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    link = "[green]connected[/]" if s.connected else "[red]disconnected[/]"
    table.add_row("node", agent.node_id)
    table.add_row("scheduler", f"{scheduler}  {link}")
    state = s.status + (f" ({s.status_reason})" if s.status_reason else "")
    table.add_row("status", state + ("  [yellow]draining[/]" if book.draining else ""))
    table.add_row(
        "jobs",
        f"running {len(book.running)}/{book.max_jobs}  done {book.done}  failed {book.failed}"
        f"  discarded {book.discarded}",
    )
    streams = agent.session.streams
    if streams.max_streams:
        table.add_row(
            "streams",
            f"live {len(streams.streams)}/{streams.max_streams}  done {streams.done}"
            f"  failed {streams.failed}",
        )
    if s.latencies_ms:
        last = list(s.latencies_ms)
        table.add_row("latency", f"last {last[-1]:.0f} ms  median {statistics.median(last):.0f} ms")
    if s.pairing_code:
        table.add_row("pairing code", f"[bold cyan]{s.pairing_code}[/] (valid 5 min, single use)")
    if s.withdrawn:
        table.add_row("withdrawn", f"[red]{', '.join(s.withdrawn)}[/] (failing; restart to retry)")
    if s.last_error:
        table.add_row("last error", f"[red]{s.last_error}[/]")
    return table
