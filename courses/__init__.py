"""Courses (model, catalogue, sync, validation with papermill and nbval): see the courses issue.

Nothing is exported yet; the package exists so that `factoryhub.courses` installs where the
design puts it.
"""
