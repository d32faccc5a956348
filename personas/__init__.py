"""Personas: who the client is (classifier) and how to speak to them (tone guides)."""

from personas.guides import GuideBook, Rendered, load_guides
from personas.labels import PERSONAS, Persona

__all__ = ["PERSONAS", "GuideBook", "Persona", "Rendered", "load_guides"]
