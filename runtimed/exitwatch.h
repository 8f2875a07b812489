/* One thread that waits for the exit of many processes (a pidfd each,
 * pidfd_open(2) + poll(2)) and calls back for each: runtimed learns that a
 * container exited by itself as it happens, not at the next status call.
 *
 * A watch is keyed by a string (a container id). When its process exits
 * (or is already gone when added, or its pid now names another process)
 * the callback runs on the watcher's thread, with no lock of the watcher
 * held; it answers true when it is done with the key, false to be called
 * again a little later (the monitor has not written the exit record yet,
 * monitord does not answer): again after 100 ms, backing off to 2 s.
 *
 * The thread starts with the first add (from a thread with runtimed's
 * credentials, capabilities and namespaces, which it inherits).
 * Thread-safety: add/forget from any thread; the callback may call them
 * too. free stops the thread and waits for a callback in progress. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct exit_watch;

typedef bool (*exit_watch_fn)(void *ud, const char *key);

int exit_watch_new(exit_watch_fn fn, void *ud, struct exit_watch **ret);
/* Accepts NULL. */
struct exit_watch *exit_watch_free(struct exit_watch *w);

/* Watch pid (started at start_time, the /proc stat field, 0: unchecked)
 * under key (< 65 chars), replacing a watch of the same key. -ENOMEM,
 * -EINVAL (bad key); a process already gone is no error: its callback
 * comes at once. */
int exit_watch_add(struct exit_watch *w, const char *key, pid_t pid, unsigned long long start_time);
/* Stop watching key (none: nothing). */
void exit_watch_forget(struct exit_watch *w, const char *key);
