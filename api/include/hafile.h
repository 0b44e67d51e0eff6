/* hafile.h: names of the agents' files, as the manual's templates use
 * them (chapter 7.2): the environment variable holding the home directory
 * of hacluster's agents, under which the templates watch tmp/agent and
 * find bin/APIOK.x and bin/APIERROR.x. */
#ifndef HAFILE_H
#define HAFILE_H

/* getenv(CLUSTERHOME) is the home directory, $HAHOME in shell agents. */
#define CLUSTERHOME "HAHOME"

/* The C template closes descriptors 0 to NOFILE-1; glibc's <sys/param.h>
 * defines NOFILE only where OPEN_MAX exists, which Linux lacks. */
#ifndef NOFILE
#define NOFILE 256
#endif

#endif /* HAFILE_H */
