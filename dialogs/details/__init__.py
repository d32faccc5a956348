"""Finding, validating and normalising the details a request needs (phone, contract, email, ...)."""

from dialogs.details.base import DetailKind, DetailSpec, Found, Invalid
from dialogs.details.extractor import DetailExtractor

__all__ = ["DetailExtractor", "DetailKind", "DetailSpec", "Found", "Invalid"]
