"""Export a converted SNN to other ecosystems' formats (NIR)."""
