"""Static files behind nginx: collectstatic writes each file also under a name carrying its content hash
(`app.3f2a9c1b7e4d.js`) and templates' `{% static %}` point at those, so nginx can let browsers keep them for
a year (deploy/nginx/gridmgmt.conf). Used only when the ASGI app does not serve /static/ itself
(SERVE_STATIC=false): the app's own handler finds files by their source names.

ES module imports are not rewritten: the faces' modules import each other in a cycle, which Django's
rewriting cannot hash (max passes exceeded); nginx makes browsers revalidate source names instead.
Source-map comments are left alone: the vendored bundles name .map files that are not shipped, and a map
is a debugging aid, not something a page loads.
"""

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage


def _without_source_maps(patterns):
    kept = []
    for extension, rules in patterns:
        rules = tuple(r for r in rules if "sourceMappingURL" not in (r[0] if isinstance(r, tuple) else r))
        if rules:
            kept.append((extension, rules))
    return tuple(kept)


class HashedStaticStorage(ManifestStaticFilesStorage):
    patterns = _without_source_maps(ManifestStaticFilesStorage.patterns)

    def stored_name(self, name):
        # No manifest yet — collectstatic's own start-up, where geo's app config already asks for URLs: the
        # source names (served too, with a short cache). Once collectstatic has run, a name missing from the
        # manifest is an error, as Django makes it.
        if not self.hashed_files:
            return name
        return super().stored_name(name)
