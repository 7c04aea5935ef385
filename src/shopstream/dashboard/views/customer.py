"""Customer: find a customer (PostgreSQL), then their profile, lifetime totals and orders."""

from __future__ import annotations

import psycopg
import streamlit as st

from shopstream.dashboard import access, resources
from shopstream.dashboard.format import local_time, money, number
from shopstream.store.customer_pages import MAX_QUERY, CustomerMatch, history, search
from shopstream.store.errors import StoreUnavailableError

__all__ = ["render"]

PAGE_SIZE = 10


def render() -> None:
    st.title("Customer")
    text = st.text_input(
        "Find a customer",
        key="customer_query",
        max_chars=MAX_QUERY,
        placeholder="Customer id, or the start of a name or email",
    )
    me = access.viewer()
    if not text.strip():
        st.info("Type a customer id, or the first letters of a name or an email address.")
        return
    try:
        with resources.postgres().connection() as conn:
            matches = search(conn, text)
    except psycopg.Error as exc:
        st.error(f"PostgreSQL is not answering ({type(exc).__name__}): is the stack up?")
        return
    if not me.sees_emails:
        # Whoever may not read addresses may not probe them either: id and name matches only.
        wanted = text.strip().lower()
        matches = [m for m in matches if str(m.id) == wanted or m.name.lower().startswith(wanted)]
    if not matches:
        st.warning(f"No customer has the id, or a name or email starting with, “{text.strip()}”.")
        return
    labels = {m.id: f"{m.name} · {me.email_of(m.email)} · #{m.id}" for m in matches}
    chosen = st.selectbox(
        f"{len(matches)} match{'es' if len(matches) != 1 else ''}",
        [m.id for m in matches],
        format_func=labels.__getitem__,
        key="customer_choice",
    )
    customer = next(m for m in matches if m.id == chosen)
    _profile(customer)

    @st.fragment(run_every=resources.settings().dashboard_refresh_s)
    def orders() -> None:
        try:
            _orders(customer)
        except StoreUnavailableError as exc:
            st.error(f"MongoDB is not answering ({exc.cause}): is the stack up?")
        except psycopg.Error as exc:
            st.error(f"PostgreSQL is not answering ({type(exc).__name__}): is the stack up?")

    orders()


def _profile(c: CustomerMatch) -> None:
    tz = resources.tz()
    st.subheader(c.name)
    cols = st.columns(4)
    cols[0].markdown(f"**Email**  \n{access.viewer().email_of(c.email)}")
    cols[1].markdown(f"**City**  \n{c.city}, {c.country}")
    cols[2].markdown(f"**Segment**  \n{c.segment.replace('_', ' ')}")
    cols[3].markdown(f"**Customer since**  \n{local_time(c.signup_at, tz, True)[:10]}")


def _orders(c: CustomerMatch) -> None:
    settings, tz = resources.settings(), resources.tz()
    page_key = f"customer_page_{c.id}"
    page = int(st.session_state.get(page_key, 1))
    with resources.postgres().connection() as conn:
        found = history(conn, resources.store(), c.id, page, PAGE_SIZE)
    cols = st.columns(4)
    cols[0].metric("Lifetime orders", number(found.orders))
    cols[1].metric("Lifetime spend", money(found.spend_cents, settings.currency))
    cols[2].metric("First order", local_time(found.first_order_at, tz, True)[:10])
    cols[3].metric("Last order", local_time(found.last_order_at, tz, True)[:10])
    if not found.orders:
        st.info(f"{c.name} has no orders yet.")
        return
    st.subheader("Orders, newest first")
    for entry in found.entries:
        doc = found.details.get(entry.order_id)
        title = (
            f"{local_time(entry.created_at, tz, True)} · "
            f"{money(entry.total_cents, settings.currency)} · "
            f"{entry.items} line{'s' if entry.items != 1 else ''}, {entry.units} unit(s)"
        )
        with st.expander(title):
            st.caption(f"Order {entry.order_id}")
            if doc is None:
                st.write("The order's lines are not in the store.")
                continue
            st.dataframe(
                [
                    {
                        "Product": i["name"],
                        "Category": i["category"],
                        "Unit price": money(round(i["unit_price"] * 100), settings.currency),
                        "Quantity": i["quantity"],
                        "Line total": money(round(i["line_total"] * 100), settings.currency),
                    }
                    for i in doc["items"]
                ],
                hide_index=True,
                width="stretch",
            )
            st.markdown(f"**Total {money(round(doc['order_total'] * 100), settings.currency)}**")
    prev_col, info_col, next_col = st.columns([1, 2, 1])
    # Callbacks run before the rerun the click causes, so that rerun shows the new page.
    prev_col.button(
        "← Newer", disabled=found.page <= 1, key=f"newer_{c.id}",
        on_click=_go, args=(page_key, found.page - 1),
    )  # fmt: skip
    info_col.markdown(f"Page {found.page} of {found.pages}")
    next_col.button(
        "Older →", disabled=found.page >= found.pages, key=f"older_{c.id}",
        on_click=_go, args=(page_key, found.page + 1),
    )  # fmt: skip


def _go(page_key: str, page: int) -> None:
    st.session_state[page_key] = page
