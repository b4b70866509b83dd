# Sourced by the scripts that run the agent (bench.sh, bench-cpu.sh,
# bench-readers.sh, soak.sh): the setup they share, kept in one place.

# free_port prints a TCP port of 127.0.0.1 that nothing listens on.
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# w1_tree DIR N makes N DS18B20-style devices under DIR (emptied first), as
# the kernel's w1-therm shows them: w1_slave (a scratchpad with a valid CRC,
# 25.062 °C) and temperature (millidegrees, which Telegraf's multifile
# reads). No bus master is listed, so Kelvin reads each device on its own,
# one file per reading.
w1_tree() {
	rm -rf "$1"
	local i a
	for ((i = 0; i < $2; i++)); do
		a=$(printf '28-%012x' $((i + 1)))
		mkdir -p "$1/$a"
		printf '91 01 4b 46 7f ff 0c 10 70 : crc=70 YES\n91 01 4b 46 7f ff 0c 10 70 t=25062\n' >"$1/$a/w1_slave"
		echo 25062 >"$1/$a/temperature"
	done
}

# w1_sensors DIR INTERVAL prints the sensors: list of a Kelvin config that
# reads every device of w1_tree DIR with its ds18b20 type.
w1_sensors() {
	local a
	echo 'sensors:'
	for a in $(ls "$1"); do
		printf '  - { id: t%s, type: ds18b20, address: %s, interval: %s }\n' "${a#28-}" "$a" "$2"
	done
}
