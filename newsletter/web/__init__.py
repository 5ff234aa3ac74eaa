"""Web apps (Starlette): the editor's live preview; the readers' pages come later."""
