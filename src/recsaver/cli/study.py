"""`recsaver study ...`: the human alignment study (create, serve, raters, import, analyze)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import err_console, friendly_errors, out_console

DEFAULT_URL = "http://127.0.0.1:8765"


def register(app: typer.Typer) -> None:
    study_app = typer.Typer(help="Human alignment study: rater web app, agreement and correlation statistics.",
                            no_args_is_help=True)
    raters_app = typer.Typer(help="Raters and their personal links.", no_args_is_help=True)
    study_app.add_typer(raters_app, name="raters")
    app.add_typer(study_app, name="study")

    @study_app.command("create")
    @friendly_errors
    def create(
        predictions: list[Path] = typer.Option(..., help="A run folder from `recsaver predict` (repeatable)."),
        references: Path | None = typer.Option(None, help="References folder: only examples with a "
                                                  "non-empty pool are sampled (so they can be scored)."),
        per_domain: int = typer.Option(50, help="Items per domain, balanced over gold ratings 1-5."),
        raters: int = typer.Option(3, help="Raters per item."),
        seed: int = typer.Option(0, help="Sampling seed."),
        redact: bool = typer.Option(True, help="Replace reasoning sentences that state the predicted rating."),
        base_url: str = typer.Option(DEFAULT_URL, help="Where `study serve` will be reachable (for the admin link)."),
        out: Path = typer.Option(..., help="Study folder (study.sqlite is written there)."),
    ) -> None:
        """Sample items balanced by gold rating and store them, without any rating, for raters."""
        from ..study.create import CreateConfig, create_study

        result = create_study(CreateConfig(runs=tuple(str(p) for p in predictions),
                                           references=str(references) if references else None,
                                           per_domain=per_domain, raters=raters, seed=seed, redact=redact), out)
        for w in result.warnings:
            err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
        for domain, counts in result.per_domain.items():
            out_console.print(f"{domain}: {sum(counts.values())} items; per gold rating "
                              + ", ".join(f"{k}: {v}" for k, v in counts.items()), highlight=False)
        out_console.print(f"wrote {out}/study.sqlite ({result.items} items)")
        out_console.print("admin link (shown once; keep it private):", highlight=False)
        out_console.print(f"{base_url.rstrip('/')}/admin/login/{result.admin_token}", highlight=False, soft_wrap=True)

    @study_app.command("serve")
    @friendly_errors
    def serve(
        study: Path = typer.Argument(..., help="Study folder."),
        host: str = typer.Option("127.0.0.1", help="Interface to bind; the default keeps the app on this machine."),
        port: int = typer.Option(8765, help="Port."),
        secure_cookies: bool = typer.Option(False, help="Mark cookies Secure (when served behind HTTPS)."),
    ) -> None:
        """Run the rater web app (server-rendered; answers saved at once in study.sqlite)."""
        import uvicorn

        from ..study.app import create_app

        if host not in ("127.0.0.1", "localhost", "::1"):
            err_console.print(f"[yellow]warning:[/] binding {host}: other machines can reach the app; "
                              "serve it behind HTTPS and use --secure-cookies", highlight=False)
        out_console.print(f"serving {study} on http://{host}:{port} (Ctrl+C stops)", highlight=False)
        # No access log: the login URLs carry the personal tokens.
        uvicorn.run(create_app(study, secure_cookies=secure_cookies), host=host, port=port, access_log=False,
                    log_level="warning")

    @raters_app.command("add")
    @friendly_errors
    def raters_add(
        study: Path = typer.Argument(..., help="Study folder."),
        name: str = typer.Argument(..., help="Rater name (unique)."),
        max_items: int | None = typer.Option(None, help="Assign at most this many items."),
        base_url: str = typer.Option(DEFAULT_URL, help="Where `study serve` is reachable."),
    ) -> None:
        """Add a rater, assign the items that still lack raters, print the personal link."""
        from ..study.db import StudyDB

        with StudyDB(study) as db:
            rater, token, assigned = db.add_rater(name, max_items=max_items)
        if assigned == 0:
            err_console.print("[yellow]warning:[/] every item already has its raters; this rater has no tasks",
                              highlight=False)
        out_console.print(f"{rater.name}: {assigned} items. Personal link (shown once):", highlight=False)
        out_console.print(f"{base_url.rstrip('/')}/login/{token}", highlight=False, soft_wrap=True)

    @raters_app.command("list")
    @friendly_errors
    def raters_list(study: Path = typer.Argument(..., help="Study folder.")) -> None:
        """Raters and their progress."""
        from rich.table import Table

        from ..study.db import StudyDB

        with StudyDB(study) as db:
            progress = db.progress()
        table = Table(title=str(study))
        for col in ("rater", "source", "assigned", "complete", "last answer"):
            table.add_column(col)
        for p in progress:
            table.add_row(p.rater.name, p.rater.source, str(p.assigned), str(p.complete), p.last_update or "-")
        out_console.print(table)

    @study_app.command("import")
    @friendly_errors
    def import_(
        study: Path = typer.Argument(..., help="Study folder."),
        file: Path = typer.Argument(..., help="CSV of ratings (spreadsheet, Label Studio export, our export)."),
        replace: bool = typer.Option(False, help="Overwrite answers a rater already has."),
    ) -> None:
        """Import ratings collected elsewhere; every row is validated first, then all land at once."""
        from ..study.importer import import_csv

        result = import_csv(study, file, replace=replace)
        out_console.print(f"imported {result.rows} answers ({result.replaced} replaced); new raters: "
                          f"{', '.join(result.raters_created) or 'none'}", highlight=False)

    @study_app.command("analyze")
    @friendly_errors
    def analyze(
        study: Path = typer.Argument(..., help="Study folder."),
        scores: list[Path] = typer.Option([], help="Folder with text_scores.jsonl from `recsaver score` "
                                          "(one, or one per run in the order of `create`)."),
        scores_unverified: list[Path] = typer.Option([], help="The same, scored against unverified references "
                                                     "(Table 9)."),
        out: Path | None = typer.Option(None, help="Report folder (default STUDY/analysis)."),
        resamples: int = typer.Option(1000, help="Bootstrap resamples for the CIs."),
        seed: int = typer.Option(0, help="Bootstrap seed."),
    ) -> None:
        """Tables 6-9 and 13 with bootstrap CIs; analysis.json, report.md, report.html."""
        from ..study.analysis import AnalysisConfig
        from ..study.report import tables, write_report

        target = out or study / "analysis"
        result = write_report(study, scores, scores_unverified, target,
                              AnalysisConfig(n_resamples=resamples, seed=seed))
        from rich.table import Table as RichTable

        for t in tables(result):
            table = RichTable(title=t.title, caption=t.caption)
            for h in t.header:
                table.add_column(h)
            for r in t.rows:
                table.add_row(*r)
            out_console.print(table)
        out_console.print(f"wrote {target}/analysis.json, report.md, report.html", highlight=False)
