/* clusterapi.h: the agent API of hacluster (libhaapi.so / libhaapi.a),
 * SureHA's five calls with the manual's signatures (chapter 7.1).
 *
 * Each call sends one request to hasvrd's agent socket and returns 0 when
 * hasvrd accepted it, -1 otherwise: unknown service, NULL or invalid name
 * or command, apicmd refused (root or the admin group only), or hasvrd
 * unreachable for the whole grace period (it is retried meanwhile).
 *
 * Environment: HA_AGENT_SOCKET (default /run/hacluster/agent.sock),
 * HA_AGENT_GRACE (seconds to keep retrying while hasvrd restarts,
 * default 10). Thread-safe and fork-safe (one connection per call).
 *
 * Link with -lhaapi (needs libhaapi.so.0 at run time), or statically with
 * libhaapi.a -lpthread -ldl -lm. */
#ifndef CLUSTERAPI_H
#define CLUSTERAPI_H

#ifdef __cplusplus
extern "C" {
#endif

/* Start monitoring the service: hasvrd expects heartbeats from now on. */
int apiopen(char *szServiceName);

/* One heartbeat: the service works. Call it more often than the service's
 * check_interval x check_tko, or the service counts as failed. */
int apiok(char *szServiceName);

/* The service does not work: hasvrd restarts it or moves it. */
int apierr(char *szServiceName);

/* Stop monitoring the service. */
int apiclose(char *szServiceName);

/* cmd: "BRINGIN", "BRINGOUT" or "FAILOVER", as the GUI buttons. */
int apicmd(char *cmd, char *szServiceName);

/* hacluster's addition: why the calling thread's last call returned -1
 * ("" after a success); valid until that thread's next call. */
const char *haapi_lasterror(void);

#ifdef __cplusplus
}
#endif

#endif /* CLUSTERAPI_H */
