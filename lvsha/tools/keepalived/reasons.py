"""Why each keepalived keyword lvsha does not translate is left out, in one table per block.

A migration must never lose a setting silently: every keyword dropped is
listed with one of these reasons, in the output's header and on stderr.
"""

from __future__ import annotations

NO_MAIL = (
    "lvsha mails where smtp_alert is set on an instance, a sync group, a virtual or a real "
    "server; it has no global switches for it (set smtp_alert where it applies)"
)
NO_TRACK_PROCESS = (
    "lvsha has no process tracking: write a vrrp_script that checks the process "
    '(e.g. ["/usr/bin/pgrep", "-x", "haproxy"])'
)
NO_VMAC = "lvsha does not create VRRP virtual MAC interfaces: the VIPs use the interface's MAC"
NO_ROUTES = (
    "lvsha manages only the VIPs: configure routes, rules and static addresses in the system's "
    "network configuration (ifupdown, systemd-networkd)"
)
ONE_CHECK = "lvsha runs one check per real server"
NO_RS_HOOKS = (
    "lvsha has no quorum hooks (it has notify_up/notify_down per real server): follow the "
    "quorum in `lvsha status` or the metrics"
)

GLOBAL_REASONS: dict[str, str] = {
    **dict.fromkeys(
        [
            "notification_email",
            "notification_email_from",
            "smtp_server",
            "smtp_helo_name",
            "smtp_connect_timeout",
            "smtp_alert",
            "smtp_alert_vrrp",
            "smtp_alert_checker",
            "email_faults",
            "no_email_faults",
        ],
        NO_MAIL,
    ),
    "enable_script_security": "lvsha runs hooks and checks as its own user (root), without a shell",
    "script_user": "lvsha runs hooks and checks as its own user (root), without a shell",
    "vrrp_skip_check_adv_addr": "lvsha always compares the address list of an advert with its "
    "own and discards a mismatch (RFC 3768 section 7.1)",
    "vrrp_check_unicast_src": "lvsha always accepts unicast adverts only from unicast_peers",
    "vrrp_garp_lower_prio_delay": "lvsha sends no gratuitous ARP on hearing a lower priority",
    "vrrp_garp_lower_prio_repeat": "lvsha sends no gratuitous ARP on hearing a lower priority",
    "vrrp_gna_interval": "lvsha speaks IPv4 only (no neighbour advertisements)",
    "vrrp_mcast_group6": "lvsha speaks IPv4 only",
    "vrrp_iptables": "lvsha adds no firewall rules",
    "vrrp_ipsets": "lvsha adds no firewall rules",
    "vrrp_notify_fifo": "lvsha has no notify FIFO: use the notify hooks or `lvsha status --json`",
    "notify_fifo": "lvsha has no notify FIFO: use the notify hooks or `lvsha status --json`",
    "lvs_notify_fifo": "lvsha has no notify FIFO: use the notify hooks or `lvsha status --json`",
    "lvs_flush": "lvsha never flushes the IPVS table: it changes only the services it owns",
    "lvs_flush_on_stop": "set ipvs_cleanup_on_stop = true on the services to remove them on stop",
    "lvs_timeouts": "set the IPVS timeouts with `ipvsadm --set` in the system's start-up instead",
    "default_interface": "lvsha has no static addresses, so no default interface",
}
TOP_REASONS: dict[str, str] = {
    "vrrp_track_process": NO_TRACK_PROCESS,
    "track_file": "a top-level track_file (keepalived 2.1+ name of vrrp_track_file) is not "
    "translated: write it as vrrp_track_file",
    "track_group": "lvsha has no track groups",
    "bfd_instance": "lvsha has no BFD",
    "static_ipaddress": NO_ROUTES,
    "static_routes": NO_ROUTES,
    "static_rules": NO_ROUTES,
    "virtual_server_group": "lvsha has no virtual server groups: write one [[virtual_server]] "
    "per address and port",
    "SSL": "lvsha's ssl_get uses the system CAs when verify_certificate = true and sends no "
    "client certificate",
    "garp_group": "lvsha has no gratuitous ARP groups: set garp_interval on the instances",
    "linkbeat_interfaces": "lvsha watches links through netlink only",
    "interface_up_down_delays": "lvsha reacts to link changes at once",
    "net_namespace": "run lvsha itself in the namespace (e.g. `ip netns exec NAME lvsha run`)",
    "net_namespace_ipvs": "run lvsha itself in the namespace",
    "namespace_with_ipsets": "lvsha adds no firewall rules",
    "instance": "lvsha has one instance per configuration file",
    "use_pid_dir": "lvsha writes no pid file (systemd tracks it)",
    "child_wait_time": "lvsha is one process",
    "linkbeat_use_polling": "lvsha watches links through netlink only",
}
INSTANCE_REASONS: dict[str, str] = {
    "use_vmac": NO_VMAC,
    "vmac_xmit_base": NO_VMAC,
    "use_vmac_addr": NO_VMAC,
    "use_ipvlan": NO_VMAC,
    "dont_track_primary": "lvsha always tracks the instance's own interface",
    "track_process": NO_TRACK_PROCESS,
    "track_bfd": "lvsha has no BFD",
    "mcast_dst_ip": "lvsha always sends multicast adverts to 224.0.0.18",
    "track_src_ip": "lvsha does not watch the source address",
    "unicast_fault_no_peer": "lvsha falls back to multicast when no unicast peer is listed",
    "unicast_ttl": "lvsha sends adverts with TTL 255 and requires 255 (RFC 3768 section 7.1)",
    "old_unicast_checksum": "a VRRPv3 setting; lvsha speaks VRRPv2",
    "garp_lower_prio_delay": "lvsha sends no gratuitous ARP on hearing a lower priority",
    "garp_lower_prio_repeat": "lvsha sends no gratuitous ARP on hearing a lower priority",
    "garp_extra_if": "lvsha announces the VIPs on their own interfaces only",
    "down_timer_adverts": "lvsha uses the RFC's master_down_interval (3 x advert_int + skew)",
    "lower_prio_no_advert": "lvsha answers a lower priority as RFC 3768 says",
    "higher_prio_send_advert": "lvsha yields to a higher priority as RFC 3768 says",
    "promote_secondaries": "set net.ipv4.conf.IFNAME.promote_secondaries=1 with sysctl instead",
    "virtual_routes": NO_ROUTES,
    "virtual_rules": NO_ROUTES,
    "no_accept": "lvsha always accepts packets for the VIPs while master",
    "skip_check_adv_addr": GLOBAL_REASONS["vrrp_skip_check_adv_addr"],
    "debug": "no equivalent; lvsha logs state changes and discarded adverts with reasons",
    "notify_stop": "lvsha has no notify_stop: it runs `notify` with state STOP on shutdown",
    "notify_master_rx_lower_pri": "lvsha has no hook for a lower-priority advert",
    "notify_priority_changes": "lvsha has no notify FIFO",
    "smtp_alert": NO_MAIL,
    "kernel_rx_buf_size": "lvsha leaves the socket buffers at the kernel's defaults",
    "linkbeat_use_polling": "lvsha watches links through netlink only",
    "vrf": "lvsha binds to the interface, not to a VRF",
}
VS_REASONS: dict[str, str] = {
    "quorum_up": NO_RS_HOOKS,
    "quorum_down": NO_RS_HOOKS,
    "ha_suspend": "lvsha checks real servers whether or not the VIP is held",
    "omega": NO_RS_HOOKS,
    "snmp_name": "lvsha has no SNMP; see the Prometheus metrics",
    "persistence_engine": "lvsha sets no IPVS persistence engine",
    "sorry_server_inhibit": "lvsha removes the sorry server when the quorum returns",
    "sorry_server_lvs_method": "lvsha's sorry server uses the service's forwarding",
    "hashed": "lvsha sets no `hashed` flag",
}
RS_REASONS: dict[str, str] = {
    "uthreshold": "lvsha sets no connection thresholds",
    "lthreshold": "lvsha sets no connection thresholds",
    "snmp_name": "lvsha has no SNMP; see the Prometheus metrics",
}
CHECKER_REASONS: dict[str, str] = {
    "bindto": "lvsha checks from the director's own address",
    "bind_port": "lvsha checks from an ephemeral port",
    "bind_if": "lvsha checks from the director's own address",
    "fwmark": "lvsha does not mark check packets",
    "log_all_failures": "lvsha logs every change of health, not every failed attempt",
    "fast_recovery": "lvsha checks one URL, so there is nothing to speed up",
}
OTHER_CHECKERS = {
    "SMTP_CHECK": "lvsha has no SMTP check (use misc_check with a small script)",
    "DNS_CHECK": "lvsha has no DNS check (use misc_check, e.g. with dig)",
    "UDP_CHECK": "lvsha has no UDP check (use misc_check)",
    "PING_CHECK": "lvsha has no ICMP check (use tcp_check or misc_check)",
    "BFD_CHECK": "lvsha has no BFD",
    "FILE_CHECK": "lvsha has no file check (use misc_check, e.g. `test -e FILE`)",
}
CHECKERS = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", *OTHER_CHECKERS)
