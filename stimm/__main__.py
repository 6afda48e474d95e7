from stimm.cli import app

app()
