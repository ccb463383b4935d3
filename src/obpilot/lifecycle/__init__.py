"""Creating and deleting clusters, adding and removing zones and servers."""
