/* rm -rf of the directory name under dir_fd, safe against what a layer or
 * a container may have put there: it never follows a symlink (name itself
 * included: a symlink is unlinked), never crosses into another mount (a
 * mount point inside fails the removal with -EXDEV, what is under it
 * untouched), holds O(1) fds at any depth (trees deeper than PATH_MAX too),
 * and fails with -ESTALE if the tree is moved while it walks it. -ENOENT if
 * absent. unpack_remove_tree() (unpack.h) is the checked, explaining entry
 * point. */
#pragma once

int rmtree_at(int dir_fd, const char *name);
