#!/bin/sh
# ha_ag_tmp.sh: the SureHA manual's shell agent template (chapter 7.2.2),
# unchanged: it watches $HAHOME/tmp/agent.SERVICENAME every CHECKTIME
# seconds and runs $HAHOME/bin/APIOK.x or $HAHOME/bin/APIERROR.x, links to
# hacluster's `haapi` (make them with `haapi links $HAHOME/bin`).
if test ! "$1" -o ! "$2"
then
    echo Usage:ha_ag_agent.sh SERVICENAME CHECKTIME
    exit
fi
SERVICENAME=$1
CHECKTIME=$2
while test "1"
do
    # RET=`ps -ef | grep httpd | sed "/grep/d" | grep http > /dev/null 2>&1`
    # if test $RET -eq 0
    if test -r $HAHOME/tmp/agent.$SERVICENAME
    then
        if $HAHOME/bin/APIOK.x $SERVICENAME
        then
            if test $CHECKTIME -eq 0
            then
                exit 1
            fi
            sleep $CHECKTIME
            continue
        fi
        break
    else
        if $HAHOME/bin/APIERROR.x $SERVICENAME
        then
            if test $CHECKTIME -eq 0
            then
                exit 0
            fi
            sleep $CHECKTIME
            continue
        fi
        break
    fi
done
echo ha_ag_agent.sh exit



exit 0
