/* The name table of runtimed's creations; see names.h. */
#include "names.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum entry_state { E_CREATING, E_DONE, E_BROKEN };

struct entry {
	char *name;
	char id[65];
	enum entry_state state;
};

struct name_table {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* a creation ended or a name was released */
	struct entry *items;
	size_t n, cap;
};

int name_table_new(struct name_table **ret)
{
	struct name_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->changed, NULL);
	*ret = t;
	return 0;
}

struct name_table *name_table_free(struct name_table *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		free(t->items[i].name);
	free(t->items);
	pthread_cond_destroy(&t->changed);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return NULL;
}

/* With the lock held. */
static struct entry *find(struct name_table *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->items[i].name, name) == 0)
			return &t->items[i];
	return NULL;
}

/* With the lock held. */
static int add(struct name_table *t, const char *name, const char *id, enum entry_state st)
{
	if (strlen(name) > NAME_KEY_MAX || strlen(id) > 64)
		return -ENAMETOOLONG;
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		struct entry *n = realloc(t->items, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->items = n;
		t->cap = ncap;
	}
	struct entry *e = &t->items[t->n];
	if (!(e->name = strdup(name)))
		return -ENOMEM;
	memcpy(e->id, id, strlen(id) + 1);
	e->state = st;
	t->n++;
	return 0;
}

/* With the lock held. */
static void drop(struct name_table *t, struct entry *e)
{
	free(e->name);
	*e = t->items[--t->n];
}

/* Wait for a change until deadline_ns (0: none); -ETIMEDOUT once it has
 * passed. With the lock held. */
static int wait_change(struct name_table *t, int64_t deadline_ns)
{
	if (deadline_ns <= 0) {
		pthread_cond_wait(&t->changed, &t->lock);
		return 0;
	}
	struct timespec ts = { .tv_sec = deadline_ns / 1000000000LL,
			       .tv_nsec = deadline_ns % 1000000000LL };
	return pthread_cond_timedwait(&t->changed, &t->lock, &ts) == ETIMEDOUT ? -ETIMEDOUT : 0;
}

int name_reserve(struct name_table *t, const char *name, const char *id, int64_t deadline_ns,
		 enum name_reservation *ret, char holder[65])
{
	int r = 0;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct entry *e = find(t, name);
		if (!e) {
			if ((r = add(t, name, id, E_CREATING)) == 0)
				*ret = NAME_NEW;
			break;
		}
		memcpy(holder, e->id, sizeof(e->id));
		if (e->state != E_CREATING) {
			*ret = e->state == E_DONE ? NAME_DONE : NAME_HELD;
			break;
		}
		if ((r = wait_change(t, deadline_ns)) < 0)
			break;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

void name_created(struct name_table *t, const char *name, const char *id, bool ok, bool kept)
{
	pthread_mutex_lock(&t->lock);
	struct entry *e = find(t, name);
	if (e && strcmp(e->id, id) == 0) {
		if (ok || kept)
			e->state = ok ? E_DONE : E_BROKEN;
		else
			drop(t, e);
		pthread_cond_broadcast(&t->changed);
	}
	pthread_mutex_unlock(&t->lock);
}

void name_release(struct name_table *t, const char *name, const char *id)
{
	pthread_mutex_lock(&t->lock);
	struct entry *e = find(t, name);
	if (e && strcmp(e->id, id) == 0) {
		drop(t, e);
		pthread_cond_broadcast(&t->changed);
	}
	pthread_mutex_unlock(&t->lock);
}

int name_hold(struct name_table *t, const char *name, const char *id, bool done)
{
	pthread_mutex_lock(&t->lock);
	int r = find(t, name) ? -EEXIST : add(t, name, id, done ? E_DONE : E_BROKEN);
	pthread_mutex_unlock(&t->lock);
	return r;
}
