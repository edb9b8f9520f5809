"""The unpaged lists' answers (`GET /subclouds`, a group's subclouds, `GET /alarms`) built as
JSON text by the database itself: the dcmanager client fetches every subcloud, and at 50,000
the rows, dicts and encoding in Python took seconds of the event loop the audit shares. The
keys and their order come from SHOWN_FIELDS, as views.subcloud's do; tests compare the two."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, Text, and_, case, cast, func, literal_column, or_, select, text, type_coerce
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.subclouds import SHOWN_FIELDS
from dcman.domain.secrets import SECRET_FRAGMENTS, SECRET_WORDS
from dcman.domain.states import SyncStatus

_TIMESTAMPS = ("backup_datetime", "created_at", "updated_at")


class _Json:
    """The JSON functions of one dialect (SQLite's JSON1, PostgreSQL's json)."""

    def __init__(self, dialect: str) -> None:
        self.postgresql = dialect == "postgresql"

    def object(self, pairs: list[tuple[str, Any]]) -> Any:
        args = [part for key, value in pairs for part in (_key(key), value)]
        return func.json_build_object(*args) if self.postgresql else func.json_object(*args)

    def nested(self, value: Any) -> Any:
        """A JSON value from a subquery, kept JSON (SQLite loses the JSON mark across subqueries)."""
        return value if self.postgresql else func.json(value)

    def array(self, value: Any, order: Any) -> Any:
        """The JSON array of a column's values, in `order`, `[]` for no rows."""
        if self.postgresql:
            return func.coalesce(func.json_agg(aggregate_order_by(value, order)), literal_column("'[]'::json"))
        return func.json_group_array(func.json(value))  # the subquery hands rows over in order

    def timestamp(self, column: Any) -> Any:
        """As str(datetime) writes it: no fraction when it is zero."""
        if self.postgresql:
            text = func.to_char(column, "YYYY-MM-DD HH24:MI:SS.US")
            return func.regexp_replace(text, r"\.000000$", "")
        text = type_coerce(column, String)  # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff"
        return case((func.substr(text, -7) == ".000000", func.substr(text, 1, func.length(text) - 7)), else_=text)

    def boolean(self, column: Any) -> Any:
        if self.postgresql:
            return column
        return case((column, func.json("true")), else_=func.json("false"))  # SQLite stores 0 and 1


def _key(key: str) -> Any:
    """A constant key as an SQL string literal (no bound parameter: PostgreSQL could not type it)."""
    return literal_column("'" + key.replace("'", "''") + "'")


def _endpoints(j: _Json, subcloud_id: Any) -> Any:
    e = t.subcloud_status.c
    entry = j.object([("endpoint_type", e.endpoint_type), ("sync_status", e.sync_status)])
    if j.postgresql:
        return select(j.array(entry, e.id)).where(e.subcloud_id == subcloud_id).scalar_subquery()
    # SQLite (before 3.44) has no ORDER BY in an aggregate; the lookup walks the subcloud_id
    # index, whose entries of one subcloud are in rowid (status id) order.
    return select(func.json_group_array(entry)).where(e.subcloud_id == subcloud_id).scalar_subquery()


def _rollup(subcloud_id: Any) -> Any:
    """domain.subcloud.rollup_sync_status, in SQL (one lookup of the subcloud's statuses):
    out-of-sync if any endpoint is, in-sync if every one is (and there is one), else unknown."""
    e = t.subcloud_status.c

    def how_many(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    rollup = case((how_many(e.sync_status == SyncStatus.OUT_OF_SYNC.value) > 0, SyncStatus.OUT_OF_SYNC.value),
                  (and_(func.count() > 0, how_many(e.sync_status != SyncStatus.IN_SYNC.value) == 0),
                   SyncStatus.IN_SYNC.value),
                  else_=SyncStatus.UNKNOWN.value)
    return select(rollup).where(e.subcloud_id == subcloud_id).scalar_subquery()


def _row_body(j: _Json, with_rollup: bool, with_endpoints: bool) -> Any:
    """One subcloud's JSON object, as views.subcloud shows it."""
    c = t.subclouds.c
    pairs: list[tuple[str, Any]] = []
    for key, name in SHOWN_FIELDS:
        if name in _TIMESTAMPS:
            pairs.append((key, j.timestamp(c[name])))
        elif name == "openstack_installed":
            pairs.append((key, j.boolean(c[name])))
        else:
            pairs.append((key, c[name]))
    if with_rollup:
        pairs.append(("sync_status", _rollup(c.id)))
    if with_endpoints:
        pairs.append(("endpoint_sync_status", j.nested(_endpoints(j, c.id))))
    return j.object(pairs)


async def subcloud_list(conn: AsyncConnection, group_id: int | None = None, with_rollup: bool = False,
                        with_endpoints: bool = True) -> str:
    """`{"subclouds": [...]}` of every subcloud (of one group), in id order, as views.subcloud
    shows each (with the list's sync_status when `with_rollup`). On SQLite the whole fleet's
    list (`GET /subclouds`) is a join of the rows kept by triggers (KEPT_LIST_ROWS)."""
    j = _Json(conn.dialect.name)
    c = t.subclouds.c
    if not j.postgresql and group_id is None and with_rollup and with_endpoints:
        kept = t.subcloud_list_rows.c
        rows = select(kept.subcloud_id.label("id"), kept.body).order_by(kept.subcloud_id).subquery()
        return await _answer(conn, j, "subclouds", rows)
    rows = select(c.id, _row_body(j, with_rollup, with_endpoints).label("body"))
    if group_id is not None:
        rows = rows.where(c.group_id == group_id)
    return await _answer(conn, j, "subclouds", rows.order_by(c.id).subquery())


async def rows_might_hold_secrets(conn: AsyncConnection, group_id: int | None = None) -> bool:
    """Whether a stored JSON column of the listed subclouds could hold a secret (rows written
    before secrets were sealed apart): the same cheap test as domain.secrets.might_hold_secrets,
    on the two columns that could, in the database, instead of on the whole answer's text."""
    c = t.subclouds.c
    words = (*SECRET_FRAGMENTS, *SECRET_WORDS)
    suspect = or_(*(column.ilike(f"%{word}%") for column in (c.data_install, c.rehome_data) for word in words))
    query = select(c.id).where(suspect)
    if group_id is not None:
        query = query.where(c.group_id == group_id)
    return (await conn.execute(query.limit(1))).first() is not None


async def alarm_summary(conn: AsyncConnection) -> str:
    """`{"alarm_summary": [...]}`, as views.alarm_summary shows each row, in subcloud id order."""
    j = _Json(conn.dialect.name)
    a, s = t.subcloud_alarms.c, t.subclouds.c
    body = j.object([("region_name", s.name), ("uuid", a.uuid), ("critical_alarms", a.critical_alarms),
                     ("major_alarms", a.major_alarms), ("minor_alarms", a.minor_alarms), ("warnings", a.warnings),
                     ("cloud_status", a.cloud_status)])
    if not j.postgresql:  # each row's text is kept by triggers (migration 0016): join it, in id order
        rows = select(a.subcloud_id.label("id"), a.summary_json.label("body")).order_by(a.subcloud_id).subquery()
        return await _answer(conn, j, "alarm_summary", rows)
    rows = (select(s.id, body.label("body")).select_from(t.subcloud_alarms.join(t.subclouds, a.subcloud_id == s.id))
            .order_by(s.id).subquery())
    return await _answer(conn, j, "alarm_summary", rows)


async def alarm_summary_version(conn: AsyncConnection) -> int | None:
    """The version of `GET /alarms`'s answer, raised by triggers whenever it changes (migration
    0018), or None where it is not kept (PostgreSQL)."""
    if conn.dialect.name != "sqlite":
        return None
    return int((await conn.execute(text("SELECT version FROM alarm_summary_version"))).scalar_one())


async def _answer(conn: AsyncConnection, j: _Json, key: str, rows: Any) -> str:
    if j.postgresql:
        answer = j.object([(key, j.array(rows.c.body, rows.c.id))])
        query = select(cast(answer, Text))  # asyncpg would decode json
    else:
        # Each body is JSON text already: joined as text, not re-parsed by json_group_array(json())
        # (40 % of the query at 50,000 subclouds). The subquery hands the rows over in order.
        joined = func.coalesce(func.group_concat(rows.c.body, ","), "")
        query = select(literal_column("'" + '{"' + key + '":[' + "'") + joined + "]}")
    return str((await conn.execute(query)).scalar_one())


# --- the rows of `GET /subclouds` kept by SQLite triggers ---------------------------------------
#
# At 50,000 subclouds building every row's JSON in the query was 1.2 s of CPU per unpaged list,
# on the machine the audit shares. On SQLite each row's text is kept in subcloud_list_rows
# (migration 0020) by triggers on the tables it is made of, so the list is a join of stored
# text. The triggers are generated from the same expression the query uses, and made again at
# start-up whenever the code's expression changed (ensure_kept_list_rows), rows refilled then.

_KEPT = "subcloud_list_rows"


def _kept_row_insert(where: str) -> str:
    """`INSERT OR REPLACE` of the kept rows of the subclouds matching `where` (SQL on `subclouds`)."""
    c = t.subclouds.c
    query = select(c.id, _row_body(_Json("sqlite"), True, True)).where(text(where))
    from sqlalchemy.dialects import sqlite

    compiled = query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    return f"INSERT OR REPLACE INTO {_KEPT} (subcloud_id, body) {compiled}"


def _shown_columns() -> str:
    return ", ".join(sorted({name for _, name in SHOWN_FIELDS}))


def kept_list_triggers() -> dict[str, str]:
    """The triggers that keep subcloud_list_rows right whoever writes a subcloud or its statuses."""
    for_new = _kept_row_insert("subclouds.id = NEW.id")
    for_status = _kept_row_insert("subclouds.id = NEW.subcloud_id")
    for_old_status = _kept_row_insert("subclouds.id = OLD.subcloud_id")
    return {
        "subcloud_list_row_on_insert": f"AFTER INSERT ON subclouds BEGIN {for_new}; END",
        "subcloud_list_row_on_update": f"AFTER UPDATE OF {_shown_columns()} ON subclouds BEGIN {for_new}; END",
        "subcloud_list_row_on_delete": f"AFTER DELETE ON subclouds BEGIN DELETE FROM {_KEPT} "
                                       "WHERE subcloud_id = OLD.id; END",
        "subcloud_list_row_on_status_insert": f"AFTER INSERT ON subcloud_status BEGIN {for_status}; END",
        "subcloud_list_row_on_status_update": f"AFTER UPDATE ON subcloud_status BEGIN {for_status}; END",
        "subcloud_list_row_on_status_delete": f"AFTER DELETE ON subcloud_status BEGIN {for_old_status}; END",
    }


def ensure_kept_list_rows(connection: Any) -> bool:
    """Make the triggers again and refill every kept row when the stored triggers are not the
    code's (a new release changed the list's fields, or a table rebuild dropped them); SQLite
    only, on a synchronous connection in the migration's transaction. True when it refilled."""
    wanted = {name: f"CREATE TRIGGER {name} {body}" for name, body in kept_list_triggers().items()}
    stored = dict(connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                          "AND name LIKE 'subcloud_list_row_%'")).all())
    if stored == wanted:
        return False
    for name in stored:
        connection.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
    for sql in wanted.values():
        connection.execute(text(sql))
    connection.execute(text(f"DELETE FROM {_KEPT}"))
    connection.execute(text(_kept_row_insert("1 = 1")))
    return True
