"""phenoface: multimodal compositional learning for diseased-face generation.

Data flows one way (see ../shared/DESIGN.md): cohort / datasets -> phenotypes -> profiles <- kg, llm
-> conditioning -> model -> sampling / editing -> evaluation -> report. A module imports only modules
upstream of it.
"""

__version__ = "0.1.0"
