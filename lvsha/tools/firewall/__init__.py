"""The firewall evaluator of `lvsha doctor`: nftables, iptables and ufw, walked for VRRP."""
