"""Where the tests find the repository, wherever in tests/ they sit."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
