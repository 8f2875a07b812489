/* cric-pause: the infra process of a pod whose containers share one PID
 * namespace (namespace_options.pid == POD). It is PID 1 there: it reaps the
 * orphans that get reparented to it and exits on SIGINT or SIGTERM. Built
 * static so that it runs from a root filesystem holding nothing else. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		puts("cric-pause");
		return 0;
	}
	if (getpid() != 1)
		fputs("cric-pause: not PID 1: orphans will not be reaped here\n", stderr);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	for (;;)
		pause();
}
