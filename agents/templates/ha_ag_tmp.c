/* ha_ag_tmp.c: the SureHA manual's C agent template (chapter 7.2.1), as
 * the manual gives it: it watches $HAHOME/tmp/agent every Interval
 * seconds, calling apiok while the file exists and apierr when it is gone,
 * and stops (apiclose) when a call fails. Usage: ha_ag_tmp.x SERVICE
 * INTERVAL (INTERVAL <= 0: one check, exit 1 if the file exists).
 * Changes from the manual, marked "hacluster:", only where it would not
 * run; NOFILE, which glibc lacks, comes from our hafile.h. */
#include "clusterapi.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/file.h>
#include <sys/param.h>

#include "hafile.h"

char buf[255];
void mylog(char *bf)
{
    FILE *fp;
    fp=fopen("/dev/console","w");
    /* hacluster: the manual calls fputs and fclose unchecked, which
     * crashes where /dev/console cannot be opened (any agent not run as
     * root, containers). */
    if(fp!=NULL)
    {
        fputs(bf,fp);
        fclose(fp);
    }
    printf(bf);
}

int main(int argc,char *argv[])
{
    char szServiceName[100];
    char szFile[128];
    char *tmp;
    int Interval;
    int i;

    if(argc!=3)
    {
        sprintf(buf,"ha_ag_agent.x:  Usage:ha_ag_agent.x ServiceName Interval\n");
        mylog(buf);
        exit(1);
    }
    tmp=getenv(CLUSTERHOME);
    if(tmp==NULL)
    {
        mylog("ha_ag_agent.x:Can't find home directory.EXIT!\n");
        exit(1);
    }
    sprintf(szFile,"%s/tmp/agent",tmp);
    for(i=0;i<NOFILE;i++)
        close(i);

    strcpy(szServiceName,argv[1]);
    sscanf(argv[2],"%d",&Interval);
    if (Interval <= 0)
    {
        if (access(szFile,F_OK) == 0) return 1;
        return 0;
    }

    apiopen(szServiceName);
    while(1)
    {
        if(access(szFile,F_OK)!=0)
        {
            if(apierr (szServiceName)==-1)
                break;
        }
        else
        {
            if(apiok(szServiceName)==-1)
                break;
        }
        sleep (Interval-1);
    }
    apiclose(szServiceName);
    return 0;
}
