"""The analytics page's contents from a dashboard: every section's table rows, numbers written as Russian
readers write them, and its chart (web/analytics_charts.py draws the geometry)."""

from __future__ import annotations

from typing import Any

from common.channels import title
from common.names import NOT_UNDERSTOOD, HandoffReason
from dialogs.content import Content
from dialogs.teams import parse_duration
from storage.analytics import RATINGS, Dashboard, ResponseTimes, share
from web import analytics_charts as charts
from web.console import PERSONA_TITLES, reason_titles

TOP_SCENARIOS = 15
NO_SCENARIO = "без распознанного запроса"
# What the console's reason titles do not name: a campaign's «Интересно», and the inbox's own reason.
MORE_REASONS = {
    HandoffReason.CAMPAIGN_INTEREST: "ответ «Интересно» на рассылку",
    NOT_UNDERSTOOD: "бот ответил «не понял»",
}


def number(value: int) -> str:
    """12 345: thousands apart (a no-break space)."""
    return f"{value:,}".replace(",", "\u00a0")


def percent(value: float | None) -> str:
    """66,7 %; a dash when there is nothing to divide."""
    return "—" if value is None else f"{value:.1f}".replace(".", ",") + "\u00a0%"


def duration(seconds: float | None) -> str:
    """45 с, 3 мин 05 с, 2 ч 07 мин; a dash for none."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} с"
    if whole < 3600:
        return f"{whole // 60} мин {whole % 60:02d} с"
    return f"{whole // 3600} ч {whole % 3600 // 60:02d} мин"


def rating(value: float | None) -> str:
    """4,25; a dash for none."""
    return "—" if value is None else f"{value:.2f}".replace(".", ",")


def _team_of(content: Content) -> dict[str, str]:
    return {category: name for name, team in content.teams.spec.teams.items() for category in team.categories}


def _response_rows(dashboard: Dashboard, content: Content) -> list[dict[str, Any]]:
    """First replies by team (its categories combined), each followed by its categories, then the total."""
    categories = {name: c.title for name, c in content.scenarios.categories.items()}
    team_of = _team_of(content)
    rows: list[dict[str, Any]] = []

    def row(kind: str, key: str, name: str, times: ResponseTimes) -> dict[str, Any]:
        return {
            "kind": kind,
            "key": key,
            "name": name,
            "handoffs": number(times.handoffs),
            "answered": number(times.answered),
            "median": duration(times.median_s),
            "median_s": times.median_s,
            "p90": duration(times.p90_s),
            "p90_s": times.p90_s,
            "breached": number(times.breached),
            "breached_share": percent(times.breached_share),
        }

    teams = content.teams.spec.teams
    for name, team in teams.items():
        own = [dashboard.response[c] for c in team.categories if c in dashboard.response]
        if not own:
            continue
        rows.append(row("team", name, team.title or name, ResponseTimes.combine(own)))
        for category in team.categories:
            if category in dashboard.response:
                rows.append(
                    row(
                        "category", category, categories.get(category, category), dashboard.response[category]
                    )
                )
    # Categories no team answers now (the content changed since): still counted, on their own.
    for category, times in sorted(dashboard.response.items()):
        if category not in team_of:
            rows.append(row("category", category, categories.get(category, category), times))
    rows.append(row("total", "", "Всего", dashboard.overall))
    return rows


def _targets(content: Content) -> str:
    """The first-reply targets of the teams file, as people read them."""
    parts = []
    for channel, target in content.teams.spec.first_response.items():
        shown = duration(parse_duration(target).total_seconds())
        parts.append(f"{'по умолчанию' if channel == 'default' else title(channel)}: {shown}")
    return ", ".join(parts)


def sections(dashboard: Dashboard, content: Content) -> dict[str, Any]:
    """Every section's table rows and chart, for the template."""
    rows = _rows(dashboard, content)
    return {**rows, "charts": _charts(dashboard, rows)}


def _rows(dashboard: Dashboard, content: Content) -> dict[str, Any]:
    """Every section's numbers as the tables show them."""
    reasons = {**MORE_REASONS, **reason_titles(content)}
    scenarios = {s.id: s.title for s in content.scenarios.scenarios}
    total_in, total_out = dashboard.incoming, dashboard.outgoing
    missed_total = sum(line.misunderstood for line in dashboard.days)
    day_rows = [
        {
            "day": line.day.isoformat(),
            "shown": f"{line.day:%d.%m.%Y}",
            "conversations": number(line.conversations),
            "incoming": number(line.incoming),
            "outgoing": number(line.outgoing),
            "misunderstood": number(line.misunderstood),
            "rate": percent(line.misunderstood_rate),
        }
        for line in dashboard.days
    ]
    reason_rows = [
        {
            "reason": name,
            "title": reasons.get(name, name),
            "count": number(count),
            "share": percent(share(count, dashboard.handoffs)),
        }
        for name, count in sorted(dashboard.reasons.items(), key=lambda item: (-item[1], item[0]))
    ]
    rated = dashboard.rated
    rating_rows = [
        {
            "rating": value,
            "count": number(dashboard.ratings[value]),
            "share": percent(share(dashboard.ratings[value], rated)),
        }
        for value in RATINGS
    ]
    persona_rows = [
        {
            "persona": line.persona,
            "title": PERSONA_TITLES.get(line.persona, line.persona),
            "conversations": number(line.conversations),
            "share": percent(share(line.conversations, dashboard.conversations)),
            "handed_off": number(line.handed_off),
            "handoff_share": percent(line.handoff_share),
            "rated": number(line.rated),
            "rating": rating(line.average_rating),
        }
        for line in dashboard.personas
    ]
    top = dashboard.scenarios[:TOP_SCENARIOS]
    scenario_rows = [
        {
            "scenario": line.scenario,
            "title": scenarios.get(line.scenario, line.scenario) if line.scenario else NO_SCENARIO,
            "conversations": number(line.conversations),
            "share": percent(share(line.conversations, dashboard.conversations)),
            "handed_off": number(line.handed_off),
            "handoff_share": percent(share(line.handed_off, line.conversations)),
            "tasks": number(line.tasks),
        }
        for line in top
    ]
    missed_rows = [
        {"reason": name, "title": reasons.get(name, name), "count": number(count)}
        for name, count in sorted(dashboard.misunderstood.items(), key=lambda item: (-item[1], item[0]))
    ]
    overall = dashboard.overall
    return {
        "dashboard": dashboard,
        "summary": {
            "conversations": number(dashboard.conversations),
            "messages": number(total_in + total_out),
            "incoming": number(total_in),
            "outgoing": number(total_out),
            "bot_alone": percent(share(dashboard.bot_alone, dashboard.conversations)),
            "handoffs": number(dashboard.handoffs),
            "median": duration(overall.median_s),
            "p90": duration(overall.p90_s),
            "breached": percent(overall.breached_share),
            "rating": rating(dashboard.average_rating),
            "misunderstood": percent(share(missed_total, total_in)),
        },
        "day_rows": day_rows,
        "day_totals": {
            "conversations": number(sum(line.conversations for line in dashboard.days)),
            "incoming": number(total_in),
            "outgoing": number(total_out),
            "misunderstood": number(missed_total),
            "rate": percent(share(missed_total, total_in)),
        },
        "handed_rows": [
            {
                "key": key,
                "title": name,
                "count": number(count),
                "share": percent(share(count, dashboard.conversations)),
            }
            for key, name, count in _handed(dashboard)
        ],
        "reason_rows": reason_rows,
        "response_rows": _response_rows(dashboard, content),
        "targets": _targets(content),
        "rating_rows": rating_rows,
        "rated": number(rated),
        "average_rating": rating(dashboard.average_rating),
        "follow_ups": {
            "due": number(dashboard.follow_ups_due),
            "tasks": number(dashboard.follow_up_tasks),
            "done": number(dashboard.follow_ups_done),
            "done_share": percent(share(dashboard.follow_ups_done, dashboard.follow_up_tasks)),
        },
        "persona_rows": persona_rows,
        "scenario_rows": scenario_rows,
        "scenarios_more": max(len(dashboard.scenarios) - TOP_SCENARIOS, 0),
        "missed_rows": missed_rows,
    }


def _charts(dashboard: Dashboard, rows: dict[str, Any]) -> dict[str, charts.Chart]:
    """Every section's chart, from the dashboard and its table rows."""
    days = [line.day for line in dashboard.days]
    handed = _handed(dashboard)
    top = dashboard.scenarios[:TOP_SCENARIOS]
    rates = [line.misunderstood_rate for line in dashboard.days]
    top_rate = max((r for r in rates if r is not None), default=0.0)
    reason_rows, response_rows = rows["reason_rows"], rows["response_rows"]
    scenario_rows = rows["scenario_rows"]
    return {
        "days": charts.columns(
            "chart-conversations",
            "Разговоры по дням",
            days,
            [("conversations", "Разговоры", [line.conversations for line in dashboard.days])],
        ),
        "messages": charts.columns(
            "chart-messages",
            "Сообщения по дням",
            days,
            [
                ("incoming", "От клиентов", [line.incoming for line in dashboard.days]),
                ("outgoing", "Клиентам", [line.outgoing for line in dashboard.days]),
            ],
        ),
        "handed": charts.bars(
            "chart-handed",
            "Бот сам или люди",
            [
                (
                    key,
                    name,
                    float(count),
                    f"{number(count)} · {percent(share(count, dashboard.conversations))}",
                )
                for key, name, count in handed
            ],
        ),
        "reasons": charts.bars(
            "chart-reasons",
            "Почему передали людям",
            [
                ("reason", row["title"], float(dashboard.reasons[row["reason"]]), row["count"])
                for row in reason_rows
            ],
        ),
        "response": charts.bars(
            "chart-response",
            "Первый ответ людей: медиана по категориям",
            [
                (
                    "median",
                    row["name"],
                    float(row["median_s"] or 0.0),
                    f"{row['median']} · 90 %: {row['p90']}",
                )
                for row in response_rows
                if row["kind"] == "category"
            ],
        ),
        "ratings": charts.bars(
            "chart-ratings",
            "Оценки клиентов",
            [
                (
                    f"rating-{value}",
                    f"оценка {value}",
                    float(dashboard.ratings[value]),
                    number(dashboard.ratings[value]),
                )
                for value in RATINGS
            ],
        ),
        "personas": charts.bars(
            "chart-personas",
            "Типы клиентов",
            [
                (
                    f"persona-{line.persona}",
                    PERSONA_TITLES.get(line.persona, line.persona),
                    float(line.conversations),
                    number(line.conversations),
                )
                for line in dashboard.personas
            ],
        ),
        "scenarios": charts.bars(
            "chart-scenarios",
            "Частые запросы",
            [
                ("scenario", row["title"], float(line.conversations), row["conversations"])
                for row, line in zip(scenario_rows, top, strict=True)
            ],
        ),
        "misunderstood": charts.line(
            "chart-misunderstood",
            "Доля непонятых сообщений по дням",
            days,
            rates,
            percent(top_rate or None),
        ),
    }


def _handed(dashboard: Dashboard) -> list[tuple[str, str, int]]:
    """(key, title, conversations) of the bot alone and of people."""
    return [
        ("bot", "бот справился сам", dashboard.bot_alone),
        ("people", "передали людям", dashboard.handed_off),
    ]
