"""(placeholder, being written)"""

from flask import Blueprint

bp = Blueprint("stripe_webhook", __name__)
