"""Customers: reading needs the read scope, changes need write."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, url_for
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import Conflict, NotFound

from legacy_flask.auth import require_scope
from legacy_flask.conditional import check_if_match, tagged, tagged_unless_current
from legacy_flask.db import get_session
from legacy_flask.schemas import (
    CustomerQuerySchema,
    CustomerReplaceSchema,
    CustomerSchema,
    dump,
    load_args,
    load_body,
    page_of,
)
from shop_core.emails import email_key
from shop_core.models import Customer, Order

bp = Blueprint("customers", __name__, url_prefix="/customers")
customer_schema = CustomerSchema()
replace_schema = CustomerReplaceSchema()
query_schema = CustomerQuerySchema()


def _get_or_404(session: Session, customer_id: int, *, for_update: bool = False) -> Customer:
    # FOR UPDATE on PostgreSQL; on SQLite the write transaction holds the write lock already.
    customer = session.get(Customer, customer_id, with_for_update=for_update or None)
    if customer is None:
        raise NotFound(f"Customer {customer_id} not found.")
    return customer


def _get_to_change(session: Session, customer_id: int) -> Customer:
    """The customer, locked, if If-Match names their current tag."""
    customer = _get_or_404(session, customer_id, for_update=True)
    check_if_match(dump(customer_schema, customer))
    return customer


def _commit_or_conflict(session: Session, email: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        # The unique index on the normalised address decides; a check beforehand could race.
        raise Conflict(f"A customer with email {email!r} already exists.") from None


@bp.get("")
@require_scope("read")
def list_customers() -> dict[str, Any]:
    """List customers by id; `email` matches any spelling of the address (case, width)."""
    args = load_args(query_schema)
    query = select(Customer)
    if args["email"] is not None:
        query = query.where(Customer.email_key == email_key(args["email"]))
    session = get_session()
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = session.scalars(
        query.order_by(Customer.id)
        .limit(args["per_page"])
        .offset((args["page"] - 1) * args["per_page"])
    ).all()
    return page_of(customer_schema, page, key="customers", args=args, total=total)


@bp.get("/<id:customer_id>")
@require_scope("read")
def get_customer(customer_id: int) -> Response:
    """One customer, with their ETag."""
    return tagged_unless_current(dump(customer_schema, _get_or_404(get_session(), customer_id)))


@bp.post("")
@require_scope("write")
def create_customer() -> Response:
    """Add a customer; the email must be new, whatever its case."""
    data = load_body(customer_schema)
    session = get_session()
    customer = Customer(**data)
    session.add(customer)
    _commit_or_conflict(session, data["email"])
    location = url_for("customers.get_customer", customer_id=customer.id)
    return tagged(dump(customer_schema, customer), 201, {"Location": location})


@bp.put("/<id:customer_id>")
@require_scope("write")
def replace_customer(customer_id: int) -> Response:
    """Replace a customer's name, email and tier (If-Match is honoured, not required)."""
    data = load_body(replace_schema)
    session = get_session()
    customer = _get_to_change(session, customer_id)
    for name, value in data.items():
        setattr(customer, name, value)
    _commit_or_conflict(session, data["email"])
    return tagged(dump(customer_schema, customer))


@bp.delete("/<id:customer_id>")
@require_scope("write")
def delete_customer(customer_id: int) -> tuple[str, int]:
    """Delete a customer who has no orders."""
    session = get_session()
    customer = _get_to_change(session, customer_id)
    has_orders = Conflict(f"Customer {customer_id} has orders.")
    if session.scalar(select(exists().where(Order.customer_id == customer_id))):
        raise has_orders
    session.delete(customer)
    try:
        session.commit()
    except IntegrityError:
        # An order was placed after the check: the foreign key still says no.
        session.rollback()
        raise has_orders from None
    return "", 204
