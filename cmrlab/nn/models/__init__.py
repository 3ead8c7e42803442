"""Model families of the course, one file per family."""
