"""Customers: list, create, change, delete."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException
from sqlalchemy import Connection, bindparam, exists, func, select
from sqlalchemy.orm import Session

from shop_core.emails import email_key
from shop_core.models import Customer, Order
from v2_fastapi.schemas.customers import (
    CustomerCreate,
    CustomerPublic,
    CustomerReplace,
    CustomerUpdate,
)
from v2_fastapi.services.common import (
    AnyRow,
    check_if_match,
    commit_or_conflict,
    get_or_404,
    row_or_404,
)

# Reads select these with Core and map the rows straight to JSON (`customer_document`).
COLUMNS = (
    Customer.id,
    Customer.name,
    Customer.email,
    Customer.tier,
    Customer.created_at,
    Customer.updated_at,
)
_BY_ID = select(*COLUMNS).where(Customer.id == bindparam("id"))


def _duplicate_email(email: str) -> HTTPException:
    return HTTPException(409, f"a customer with email {email} already exists")


def list_customers(
    conn: Connection, *, email: str | None, limit: int, offset: int
) -> tuple[Sequence[AnyRow], int]:
    # The key the unique index is on: any spelling of the address finds its customer.
    where = [Customer.email_key == email_key(email)] if email is not None else []
    total = conn.scalar(select(func.count()).select_from(Customer).where(*where))
    rows = conn.execute(
        select(*COLUMNS).where(*where).order_by(Customer.id).limit(limit).offset(offset)
    )
    return rows.all(), total or 0


def read_customer(conn: Connection, *, customer_id: int) -> AnyRow:
    """The customer's row, or a 404."""
    return row_or_404(conn, _BY_ID, "customer", customer_id)


def create_customer(session: Session, *, data: CustomerCreate) -> Customer:
    customer = Customer(**data.model_dump(mode="json"))  # mode="json": the tier as its string
    session.add(customer)
    # The unique index decides, not a look-up first: two concurrent creates both pass one.
    commit_or_conflict(session, _duplicate_email(data.email))
    return customer


def _get_to_change(session: Session, customer_id: int, if_match: str | None) -> Customer:
    # Locked, and compared with If-Match as it is now, inside the write's transaction.
    customer = get_or_404(session, Customer, customer_id, for_update=True)
    check_if_match(if_match, CustomerPublic.from_row(customer).etag())
    return customer


def update_customer(
    session: Session,
    *,
    customer_id: int,
    data: CustomerReplace | CustomerUpdate,
    if_match: str | None = None,
) -> Customer:
    customer = _get_to_change(session, customer_id, if_match)
    # mode="json": the tier as its string; fields left out of a PATCH are not in the dump.
    for column, value in data.model_dump(mode="json").items():
        setattr(customer, column, value)
    conflict = _duplicate_email(customer.email)  # a failed flush leaves the row unreadable
    commit_or_conflict(session, conflict)
    return customer


def delete_customer(session: Session, *, customer_id: int, if_match: str | None = None) -> None:
    customer = _get_to_change(session, customer_id, if_match)
    conflict = HTTPException(409, f"customer {customer_id} has orders")
    if session.scalar(select(exists().where(Order.customer_id == customer_id))):
        raise conflict
    session.delete(customer)
    # The foreign key catches an order placed for them since the check.
    commit_or_conflict(session, conflict)
