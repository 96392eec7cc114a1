"""Cards for what we publish: the dataset card (dataset_card.py) and the model card, plus the push logic.

Submodules are imported where they are used, so importing this package stays cheap.
"""
