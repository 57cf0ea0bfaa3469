"""The workbench's screens and modal dialogs."""
